"""`make demo-ops` (ape run demo): the operator flow on a throwaway anvil, start to finish.

Ape starts its own anvil (the pinned one from node_modules/.bin) on a free port and stops
it at the end. On it: deploy the venue and a BasisVault (with its BasisHedge) from deploy/local.yaml, two
depositors, one keeper rebalance into a 2x hedge, then a week of funding and moving prices
pushed by the market feeder, the vault's status before and after, and at the end a shutdown
unwound in steps. Each step calls the
same functions as the operator scripts; the equivalent command is printed above it.

The keeper bot deciding when to rebalance is README section 3 (`basis-keeper`); the yield
replay over a real history is `make demo`.
"""

from decimal import Decimal

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

from keeper.core.units import fmt_units
from keeper.ops import actions, feeder
from keeper.ops.config import config_path, load_deploy_config
from keeper.ops.deploy import deploy
from keeper.ops.deployment import Deployment

DAY = 86_400
PRICES = [3_090, 2_950, 2_820, 2_990, 3_150, 3_060, 3_120]  # daily closes after day 0, USD


def step(title: str, command: str) -> None:
    print(f"\n== {title}\n   $ {command}")


def usdc(wei: int) -> str:
    return f"{fmt_units(wei, 6)} USDC"


def main() -> None:
    """The operator tools by hand on a throwaway anvil: deploy, deposits, a rebalance, a week."""
    operator, alice, bob = accounts.test_accounts[:3]
    network = chain.provider.network_choice
    cfg = f"--network {network}"
    print(f"on {network}, a throwaway anvil; against `make node` use --network ethereum:local:node")

    step("Deploy the reference venue and the vault", f"ape run deploy {cfg} --account TEST::0")
    config = load_deploy_config(config_path("local"))
    manifest, stats = deploy(project, chain, operator, config, network=f"demo ({network})")
    print(f"   vault {manifest.vault}: {stats.transactions} transactions, {stats.gas_used:,} gas")
    dep = Deployment.bind(project, manifest)

    for who, name, acct, amount in ((alice, "alice", "TEST::1", 60_000), (bob, "bob", "TEST::2", 40_000)):
        step(
            f"{name} deposits {amount:,} USDC",
            f"ape run deposit {cfg} --account {acct} --amount {amount} --faucet",
        )
        result = actions.deposit(dep, chain, who, amount * 10**6, use_faucet=True)
        print(f"   {name} received {fmt_units(result.shares, 12)} shares")

    step(
        "The keeper hedges: spot = NAV x 2/3, short the same, margin NAV/3",
        "(the keeper bot, basis-keeper, decides this itself; here by hand)",
    )
    size, margin = actions.hedge_targets(dep, Decimal(2))
    receipt = actions.rebalance(dep, chain, operator, size, margin)
    print(f"   rebalance: short {size / 10**18:.4f} WETH, margin {usdc(margin)}, gas {receipt.gas_used:,}")
    status = actions.status(dep, chain)
    print(actions.format_status(status))

    step(
        "Funding at 0.01 % per 8h (Binance's baseline)",
        f"ape run market funding 0.01% --per 8h {cfg} --account TEST::0",
    )
    _, new = feeder.set_funding(dep, operator, Decimal("0.0001"), "8h")
    print(f"   funding {feeder.describe_rate(new)}")

    step(
        "A week of daily prices, the pool arbitraged after each",
        f"ape run market replay <a CSV of daily prices> {cfg} --account TEST::0",
    )
    start = chain.pending_timestamp
    rows = [feeder.ReplayRow(start + (i + 1) * DAY, Decimal(p), None) for i, p in enumerate(PRICES)]
    nav_before = status["nav_wei"]

    def show(s: feeder.ReplayStep) -> None:
        nav = int(dep.vault.totalAssets())
        day = (s.timestamp - start) // DAY
        print(f"   day {day}: ETH {feeder.describe_price(s.price_e8):>13}   NAV {usdc(nav):>18}")

    feeder.replay(dep, chain, operator, [feeder.ReplayRow(start, Decimal(3_000), None), *rows], on_step=show)
    status = actions.status(dep, chain)
    step("Status after the week", f"ape run status {cfg}")
    print(actions.format_status(status))
    gain = status["nav_wei"] - nav_before
    print(
        f"\n   NAV moved {usdc(gain)} over the week while ETH went 3,000 -> {PRICES[-1]:,}: the hedge"
        f"\n   cancels the price; funding paid the short {usdc(status['perp_accrued_funding_wei'])} so far"
        "\n   (accrued in the perp equity, so already in NAV)."
    )

    half = int(dep.vault.balanceOf(alice.address)) // 2
    step(
        "alice redeems half her shares (a pro-rata unwind, slippage-protected)",
        f"ape run withdraw {cfg} --account TEST::1 --shares {half / 10**12:.0f}",
    )
    out = actions.withdraw(dep, chain, alice, shares=half)
    print(f"   alice received {usdc(out.assets)} for {fmt_units(out.shares, 12)} shares")

    step(
        "The guardian shuts the vault down; anyone unwinds the hedge in bounded steps",
        f"ape run admin shutdown {cfg} --account TEST::0 && ape run admin unwind {cfg} --account TEST::0",
    )
    actions.shutdown(dep, operator)
    for s in actions.unwind(dep, chain, operator):
        print(
            f"   unwind step {s.number}: sold {s.spot_sold / 10**18:.4f} WETH, closed "
            f"{s.short_closed / 10**18:.4f} short, {usdc(s.proceeds)} back to idle"
        )
    out = actions.withdraw(dep, chain, bob, everything=True)
    print(f"   the hedge is flat; bob exits from idle: {usdc(out.assets)}")
    print(
        "\nNext: the keeper bot deciding when to rebalance (`basis-keeper`, README section 3) and the"
        "\nyield replay over a real funding history (`make demo`)."
    )


@click.command(
    cls=ConnectedProviderCommand,
    short_help="The operator tools by hand on a throwaway anvil (make demo-ops).",
)
def cli() -> None:
    """The operator tools by hand on a throwaway anvil (make demo-ops)."""
    main()
