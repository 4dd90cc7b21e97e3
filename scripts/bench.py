"""Gas benchmark: `make bench` (ape run bench).

Deploys the venue, a BasisVault and snekmate's plain `erc4626` (the reference, compiled in
the same run) on a throwaway anvil, runs one fixed sequence of calls and records each
receipt's gas used. Gas is deterministic for a given compiler and sequence, so these figures
compare run to run. Prints a table and writes reports/bench.json.
"""

import json
from pathlib import Path

from ape import accounts, chain, project

from keeper.venue import VaultRules, VenueParams, arb_to_oracle, deploy_vault, deploy_venue

REPORT = Path("reports/bench.json")
E8 = 10**8


def main() -> None:
    deployer, trader, hedger, keeper_acct, liquidator = accounts.test_accounts[:5]
    params = VenueParams()
    v = deploy_venue(project, deployer, params)
    usdc, weth, pool, perp, feed = v.asset, v.base, v.spot_pool, v.perp_market, v.price_feed
    size = 10**18
    gas: dict[str, int] = {}

    def record(name: str, receipt) -> None:
        gas[name] = receipt.gas_used

    for who in (trader, hedger):
        for _ in range(2):
            usdc.mint(who, params.asset_wei(1_000_000), sender=who)
        weth.mint(who, params.base_wei(100), sender=who)
        usdc.approve(pool, 2**256 - 1, sender=who)
        weth.approve(pool, 2**256 - 1, sender=who)
        usdc.approve(perp, 2**256 - 1, sender=who)

    record("spot: swap asset -> base", pool.swap(usdc, params.asset_wei(30_000), 0, trader, sender=trader))
    record("spot: swap base -> asset", pool.swap(weth, 10 * size, 0, trader, sender=trader))
    record(
        "spot: add_liquidity",
        pool.add_liquidity(size, params.asset_wei(3_000), 0, trader, sender=trader),
    )
    record("perp: deposit_margin (first)", perp.deposit_margin(params.asset_wei(100_000), sender=hedger))
    record("perp: deposit_margin (again)", perp.deposit_margin(params.asset_wei(10_000), sender=hedger))
    record("perp: modify_position open short", perp.modify_position(-10 * size, 0, sender=hedger))
    record("perp: set_funding_rate", perp.set_funding_rate(27_777_777_777, sender=deployer))
    chain.mine(deltatime=3_600)
    record("perp: modify_position increase", perp.modify_position(-5 * size, 0, sender=hedger))
    chain.mine(deltatime=3_600)
    record("perp: modify_position reduce", perp.modify_position(3 * size, 2**256 - 1, sender=hedger))
    record(
        "perp: withdraw_margin (open position)", perp.withdraw_margin(params.asset_wei(1_000), sender=hedger)
    )
    record("perp: modify_position close", perp.modify_position(12 * size, 2**256 - 1, sender=hedger))
    record("perp: accrue_funding", perp.accrue_funding(sender=keeper_acct))
    record("feed: set_price", feed.set_price(3_010 * E8, sender=deployer))

    # Liquidation: an 18x short, then a 4.7 % squeeze.
    perp.deposit_margin(params.asset_wei(10_000), sender=trader)
    perp.modify_position(-60 * size, 0, sender=trader)
    perp.accrue_funding(sender=keeper_acct)
    feed.set_price(3_150 * E8, sender=deployer)
    assert perp.is_liquidatable(trader), "bench setup: expected a liquidatable account"
    record("perp: liquidate", perp.liquidate(trader, sender=liquidator))

    vault_gas = bench_vault(v, params)
    gas.update(vault_gas)

    width = max(len(k) for k in gas)
    print(f"\n{'call':<{width}}  gas")
    for name, used in gas.items():
        print(f"{name:<{width}}  {used:>7,}")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    ratio = gas["vault: deposit (new holder)"] / gas["reference: deposit (new holder)"]
    print(f"\nvault deposit for a new holder / snekmate erc4626 reference: {ratio:.2f}x (target <= 1.30x)")
    REPORT.write_text(json.dumps({"gas": gas, "deposit_new_holder_ratio": round(ratio, 3)}, indent=2) + "\n")
    print(f"\nwritten: {REPORT}")


def bench_vault(v, params: VenueParams) -> dict[str, int]:
    """Vault and reference calls, same accounts and amounts, in one fixed order."""
    gov, keeper_acct, holder_a, holder_b, holder_c = accounts.test_accounts[5:10]
    feeder = accounts.test_accounts[0]  # the venue deployer holds the feeder role
    usdc = v.asset
    gas: dict[str, int] = {}
    vault = deploy_vault(project, gov, v, VaultRules(), keeper=keeper_acct.address, fee_recipient=gov.address)
    vault.set_fees(100, 1_000, sender=gov)
    reference = gov.deploy(project.ERC4626Reference, usdc.address)
    for who in (holder_a, holder_b, holder_c):
        usdc.mint(who, params.asset_wei(1_000_000), sender=who)
        usdc.approve(vault, 2**256 - 1, sender=who)
        usdc.approve(reference, 2**256 - 1, sender=who)

    for name, target in (("reference", reference), ("vault", vault)):
        gas[f"{name}: deposit (first)"] = target.deposit(
            params.asset_wei(200_000), holder_a, sender=holder_a
        ).gas_used
        chain.mine(deltatime=60)
        # steady state: the fee recipient already holds shares from an earlier accrual
        target.deposit(params.asset_wei(1_000), holder_a, sender=holder_a)
        chain.mine(deltatime=60)
        gas[f"{name}: deposit (new holder)"] = target.deposit(
            params.asset_wei(300_000), holder_b, sender=holder_b
        ).gas_used
        chain.mine(deltatime=60)
        gas[f"{name}: deposit (repeat)"] = target.deposit(
            params.asset_wei(1_000), holder_b, sender=holder_b
        ).gas_used
        gas[f"{name}: mint"] = target.mint(10**15, holder_c, sender=holder_c).gas_used
        gas[f"{name}: withdraw (from idle)"] = target.withdraw(
            params.asset_wei(500), holder_c, holder_c, sender=holder_c
        ).gas_used

    deadline = chain.pending_timestamp + 3_600
    perp = v.perp_market
    arb_to_oracle(v, feeder)  # the venue section left the oracle away from the pool

    def targets(leverage: float) -> tuple[int, int]:
        nav = vault.totalAssets()
        price = perp.index_price()
        spot_value = int(nav * leverage / (leverage + 1))
        size = spot_value * 9_980 // 10_000 * 10**18 * 10**8 // (price * params.asset_unit)
        return size, nav - spot_value

    gas["vault: rebalance (open)"] = vault.rebalance(*targets(2.0), 50, deadline, sender=keeper_acct).gas_used
    gas["vault: rebalance (adjust)"] = vault.rebalance(
        *targets(3.0), 50, deadline, sender=keeper_acct
    ).gas_used
    gas["reference: redeem"] = reference.redeem(
        reference.balanceOf(holder_c) // 2, holder_c, holder_c, sender=holder_c
    ).gas_used
    gas["vault: redeem (with unwind)"] = vault.redeem(
        vault.balanceOf(holder_a) // 2, holder_a, holder_a, sender=holder_a
    ).gas_used

    # A squeeze under the critical margin ratio, the pool arbitraged to the oracle.
    perp.accrue_funding(sender=feeder)
    v.price_feed.set_price(v.price_feed.latestAnswer() * 122 // 100, sender=feeder)  # +22 %
    arb_to_oracle(v, feeder)
    gas["vault: emergency_deleverage"] = vault.emergency_deleverage(sender=feeder).gas_used
    gas["vault: rebalance (park)"] = vault.rebalance(
        0, 0, 50, chain.pending_timestamp + 3_600, sender=keeper_acct
    ).gas_used
    return gas
