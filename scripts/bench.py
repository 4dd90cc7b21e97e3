"""Gas benchmark: `make bench` (ape run bench); also the keeper tick, the replay's speed
and a sweep's speed-up on a LocalCluster over serial (`keeper.replay.speed.bench_sweep`).

Deploys the venue, a BasisVault and snekmate's plain `erc4626` (the reference, compiled in
the same run) on a throwaway anvil, runs one fixed sequence of calls and records each
receipt's gas used. Gas is deterministic for a given compiler and sequence, so these figures
compare run to run (anvil's clock is stepped 12 s per block, so time-dependent writes do not
follow the wall clock). Prints a table and writes reports/bench.json.
"""

import json
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

from keeper.core.rules import VaultRules, VenueParams
from keeper.ops.contracts import arb_to_oracle, deploy_vault, deploy_venue, hedge_of

REPORT = Path("reports/bench.json")
E8 = 10**8


def main() -> None:
    """Gas of every venue and vault call vs snekmate's erc4626, keeper tick, replay speed,
    and a sweep's speed-up on a 2-process LocalCluster over serial (with worker memory)."""
    # Every block 12 s after the last, whatever the wall clock does: funding accrual writes
    # depend on elapsed time, so a free-running clock would make gas vary run to run.
    chain.provider.make_request("anvil_setBlockTimestampInterval", [12])
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

    vault_gas, derived = bench_vault(v, params)
    gas.update(vault_gas)

    width = max(len(k) for k in gas)
    print(f"\n{'call':<{width}}  gas")
    for name, used in gas.items():
        print(f"{name:<{width}}  {used:>7,}")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    ratio = derived["deposit_new_holder_ratio"]
    print(f"\nvault deposit for a new holder / snekmate erc4626 reference: {ratio:.2f}x (target <= 1.5x)")
    print("\nkeeper calls, gas above the venue calls they make (target <= 25 % of them):")
    for label, row in derived["keeper_call_overhead"].items():
        net = (row["above_venue"] - 21_000) / row["venue_calls"]
        print(
            f"  {label:<28} {row['gas']:>9,} = venue {row['venue_calls']:>9,} + {row['above_venue']:>7,}"
            f" ({row['above_venue_ratio']:.1%}; {net:.1%} without the 21,000 every transaction pays)"
        )
    print("\nruntime code size, bytes (budget <= 22,000 each for the vault and the hedge):")
    for name, size in derived["code_size"].items():
        print(f"  {name:<12} {size:>7,}")
    tick = bench_keeper(v, params)
    print(
        f"\nkeeper tick, nothing to do: {tick['hold_round_trips']} RPC round trips (target <= 2), "
        f"CPU median {tick['hold_cpu_ms_median']:.2f} ms / p95 {tick['hold_cpu_ms_p95']:.2f} ms "
        f"(target < 50 ms) over {tick['hold_ticks']} ticks"
    )
    print(
        f"keeper tick that deploys a deposit: {tick['act_round_trips']} round trips, "
        f"CPU {tick['act_cpu_ms']:.1f} ms, rebalance gas {tick['act_gas']:,}"
    )
    spot = bench_spot_venues(params)
    replay = bench_replay()
    from keeper.replay.speed import bench_sweep

    print()
    sweep = bench_sweep()
    report = {
        "gas": gas,
        "code_size": derived["code_size"],
        "deposit_new_holder_ratio": ratio,
        "keeper_call_overhead": derived["keeper_call_overhead"],
        "keeper_tick": tick,
        "spot_venues": spot,
        "replay": replay,
        "sweep": sweep,
    }
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {REPORT}")


def bench_keeper(v, params: VenueParams) -> dict[str, float]:
    """The keeper's tick on a fresh vault: one that deploys a deposit, then ticks with
    nothing to do (RPC round trips and process CPU time, the node's own time excluded)."""
    from eth_account import Account

    from keeper.bot.reference import ReferenceHistory
    from keeper.bot.runtime import Keeper
    from keeper.bot.strategy import Settings
    from keeper.chain.executor import Executor
    from keeper.chain.reader import Addresses, read_static
    from keeper.net.rpc import Rpc

    deployer, keeper_acct, holder = (
        accounts.test_accounts[0],
        accounts.test_accounts[8],
        accounts.test_accounts[9],
    )
    first_block = chain.blocks.head.number + 1
    vault = deploy_vault(project, deployer, v, VaultRules(), keeper=keeper_acct.address)
    usdc = v.asset
    usdc.mint(holder, params.asset_wei(1_000_000), sender=holder)
    usdc.approve(vault, 2**256 - 1, sender=holder)
    vault.deposit(params.asset_wei(1_000_000), holder, sender=holder)
    v.perp_market.set_funding_rate(5_555_555_555, sender=deployer)  # 0.002 %/h
    chain.mine(deltatime=3_600)
    v.perp_market.accrue_funding(sender=deployer)
    v.price_feed.set_price(v.price_feed.latestAnswer(), sender=deployer)
    arb_to_oracle(v, deployer)

    rpc = Rpc(chain.provider.uri)
    hedge = hedge_of(project, vault)
    addresses = Addresses(
        vault=vault.address, hedge=hedge.address, keeper=keeper_acct.address, **v.addresses()
    )
    static = read_static(rpc, addresses)
    signer = Account.from_key(keeper_acct.private_key)
    keeper = Keeper(
        rpc,
        addresses,
        static,
        ReferenceHistory.backfill(rpc, addresses.perp_market, first_block),
        Settings(funding_window_hours=1),
        executor=Executor(rpc, signer, chain.chain_id, hedge.address, poll_interval=0.01),
    )
    act = keeper.tick()
    assert act.sent is not None, f"bench setup: expected the keeper to deploy the deposit ({act.summary})"
    holds = [keeper.tick() for _ in range(50)]
    assert all(h.sent is None and h.error is None for h in holds), holds[0].summary
    cpu = sorted(h.cpu_seconds * 1000 for h in holds)
    return {
        "hold_ticks": len(holds),
        "hold_round_trips": max(h.round_trips for h in holds),
        "hold_cpu_ms_median": round(cpu[len(cpu) // 2], 3),
        "hold_cpu_ms_p95": round(cpu[int(len(cpu) * 0.95)], 3),
        "act_round_trips": act.round_trips,
        "act_cpu_ms": round(act.cpu_seconds * 1000, 3),
        "act_gas": act.sent.gas_used,
    }


def venue_gas(receipt, venue_addresses: set[str]) -> int:
    """Gas of the calls a transaction's top contract makes to the venue (perp market and
    spot pool, with the token transfers they do inside), from the call trace."""
    tree = receipt.trace.get_calltree()
    return sum(call.gas_cost for call in tree.calls if "0x" + bytes(call.address).hex() in venue_addresses)


def code_sizes(contracts: dict[str, object]) -> dict[str, int]:
    """Runtime bytecode size of each deployed contract, bytes."""
    return {name: len(chain.provider.get_code(c.address)) for name, c in contracts.items()}


def bench_vault(v, params: VenueParams) -> tuple[dict[str, int], dict[str, object]]:
    """Vault, hedge and reference calls, same accounts and amounts, in one fixed order.
    Returns the gas table and the derived figures (code sizes, ratios, venue overhead)."""
    gov, keeper_acct, holder_a, holder_b, holder_c = accounts.test_accounts[5:10]
    feeder = accounts.test_accounts[0]  # the venue deployer holds the feeder role
    usdc = v.asset
    gas: dict[str, int] = {}
    derived: dict[str, object] = {}
    vault = deploy_vault(project, gov, v, VaultRules(), keeper=keeper_acct.address, fee_recipient=gov.address)
    hedge = hedge_of(project, vault)
    vault.set_fees(100, 1_000, sender=gov)
    reference = gov.deploy(project.ERC4626Reference, usdc.address)
    derived["code_size"] = code_sizes(
        {"BasisVault": vault, "BasisHedge": hedge, "PerpMarket": v.perp_market, "SpotPool": v.spot_pool}
    )
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
    venue = {perp.address.lower(), v.spot_pool.address.lower()}
    overhead: dict[str, dict[str, int | float]] = {}

    def keeper_call(label: str, receipt) -> None:
        gas[label] = receipt.gas_used
        on_venue = venue_gas(receipt, venue)
        overhead[label] = {
            "gas": receipt.gas_used,
            "venue_calls": on_venue,
            "above_venue": receipt.gas_used - on_venue,
            "above_venue_ratio": round((receipt.gas_used - on_venue) / on_venue, 3),
        }

    arb_to_oracle(v, feeder)  # the venue section left the oracle away from the pool

    def targets(leverage: float) -> tuple[int, int]:
        nav = vault.totalAssets()
        price = perp.index_price()
        spot_value = int(nav * leverage / (leverage + 1))
        size = spot_value * 9_980 // 10_000 * 10**18 * 10**8 // (price * params.asset_unit)
        return size, nav - spot_value

    keeper_call("hedge: rebalance (open)", hedge.rebalance(*targets(2.0), 50, deadline, sender=keeper_acct))
    keeper_call("hedge: rebalance (adjust)", hedge.rebalance(*targets(3.0), 50, deadline, sender=keeper_acct))
    gas["reference: redeem"] = reference.redeem(
        reference.balanceOf(holder_c) // 2, holder_c, holder_c, sender=holder_c
    ).gas_used
    gas["vault: redeem (with unwind)"] = vault.redeem(
        vault.balanceOf(holder_a) // 2, holder_a, holder_a, sender=holder_a
    ).gas_used
    gas["vault: withdraw (with unwind)"] = vault.withdraw(
        params.asset_wei(200), holder_c, holder_c, sender=holder_c
    ).gas_used

    # A squeeze under the critical margin ratio, the pool arbitraged to the oracle.
    perp.accrue_funding(sender=feeder)
    v.price_feed.set_price(v.price_feed.latestAnswer() * 122 // 100, sender=feeder)  # +22 %
    arb_to_oracle(v, feeder)
    gas["hedge: emergency_deleverage"] = hedge.emergency_deleverage(sender=feeder).gas_used
    keeper_call(
        "hedge: rebalance (park)",
        hedge.rebalance(0, 0, 50, chain.pending_timestamp + 3_600, sender=keeper_acct),
    )

    # Liquidated while the keeper is away: booked by the next touch (`sync`), then the
    # vault is shut down and unwound in steps by anyone.
    keeper_call(
        "hedge: rebalance (re-open)",
        hedge.rebalance(*targets(2.0), 50, chain.pending_timestamp + 3_600, sender=keeper_acct),
    )
    perp.accrue_funding(sender=feeder)
    v.price_feed.set_price(v.price_feed.latestAnswer() * 150 // 100, sender=feeder)  # +50 %
    arb_to_oracle(v, feeder)
    perp.liquidate(hedge, sender=feeder)
    gas["hedge: sync (books a liquidation)"] = hedge.sync(sender=feeder).gas_used
    gas["vault: shutdown"] = vault.shutdown(sender=gov).gas_used
    step = hedge.spot_base() // 2 + 1
    gas["hedge: unwind (step)"] = hedge.unwind(step, sender=feeder).gas_used
    gas["hedge: unwind (last step)"] = hedge.unwind(step, sender=feeder).gas_used
    assert not hedge.active(), "bench: the unwind left something in the hedge"

    derived["deposit_new_holder_ratio"] = round(
        gas["vault: deposit (new holder)"] / gas["reference: deposit (new holder)"], 3
    )
    derived["keeper_call_overhead"] = overhead
    return gas, derived


# The hedge's calls that trade spot, in `bench_spot_venues`' order.
SPOT_SEQUENCE = (
    "hedge: rebalance (open)",
    "hedge: rebalance (adjust)",
    "vault: redeem (with unwind)",
    "vault: withdraw (with unwind)",
    "hedge: emergency_deleverage",
    "hedge: rebalance (park)",
    "hedge: unwind (after shutdown)",
    "spot venue: swap asset -> base (30,000)",
    "spot venue: swap base -> asset (10)",
)


def bench_spot_venues(params: VenueParams) -> dict[str, dict[str, int]]:
    """The same vault sequence on a fresh venue whose spot leg is the reference SpotPool,
    then on one whose spot leg is the official Uniswap v3 (a full-range fee-500 pool as deep,
    through the UniswapV3Spot adapter): the gas of each call that trades spot, side by side,
    and the adapter's and the pool's runtime size."""
    deployer, gov, keeper_acct, alice, bob = (accounts.test_accounts[i] for i in (0, 5, 6, 7, 3))
    table: dict[str, dict[str, int]] = {}
    for kind in ("reference", "uniswap-v3"):
        v = deploy_venue(project, deployer, params, spot=kind)
        usdc, weth, pool, perp, feed = v.asset, v.base, v.spot_pool, v.perp_market, v.price_feed
        vault = deploy_vault(project, gov, v, VaultRules(), keeper=keeper_acct.address)
        hedge = hedge_of(project, vault)
        gas: dict[str, int] = {}
        for who in (alice, bob):
            usdc.mint(who, params.asset_wei(1_000_000), sender=who)
            usdc.approve(vault, 2**256 - 1, sender=who)
        vault.deposit(params.asset_wei(300_000), alice, sender=alice)
        vault.deposit(params.asset_wei(700_000), bob, sender=bob)

        def targets(leverage: float, vault=vault, perp=perp) -> tuple[int, int]:
            nav, price = vault.totalAssets(), perp.index_price()
            spot_value = int(nav * leverage / (leverage + 1))
            size = spot_value * 9_980 // 10_000 * 10**18 * 10**8 // (price * params.asset_unit)
            return size, nav - spot_value

        def deadline() -> int:
            return chain.pending_timestamp + 3_600

        gas[SPOT_SEQUENCE[0]] = hedge.rebalance(*targets(2.0), 50, deadline(), sender=keeper_acct).gas_used
        gas[SPOT_SEQUENCE[1]] = hedge.rebalance(*targets(3.0), 50, deadline(), sender=keeper_acct).gas_used
        shares = vault.balanceOf(alice) // 2
        gas[SPOT_SEQUENCE[2]] = vault.redeem(shares, alice, alice, sender=alice).gas_used
        gas[SPOT_SEQUENCE[3]] = vault.withdraw(params.asset_wei(50_000), alice, alice, sender=alice).gas_used
        perp.accrue_funding(sender=deployer)
        feed.set_price(feed.latestAnswer() * 122 // 100, sender=deployer)  # +22 %: under critical
        arb_to_oracle(v, deployer)
        gas[SPOT_SEQUENCE[4]] = hedge.emergency_deleverage(sender=deployer).gas_used
        gas[SPOT_SEQUENCE[5]] = hedge.rebalance(0, 0, 50, deadline(), sender=keeper_acct).gas_used
        hedge.rebalance(*targets(2.0), 50, deadline(), sender=keeper_acct)
        vault.shutdown(sender=gov)
        gas[SPOT_SEQUENCE[6]] = hedge.unwind(2**256 - 1, sender=deployer).gas_used
        usdc.mint(alice, params.asset_wei(30_000), sender=alice)
        weth.mint(alice, params.base_wei(10), sender=alice)
        usdc.approve(pool, 2**256 - 1, sender=alice)
        weth.approve(pool, 2**256 - 1, sender=alice)
        gas[SPOT_SEQUENCE[7]] = pool.swap(usdc, params.asset_wei(30_000), 0, alice, sender=alice).gas_used
        gas[SPOT_SEQUENCE[8]] = pool.swap(weth, params.base_wei(10), 0, alice, sender=alice).gas_used
        sizes = {"spot venue": pool}
        if v.uniswap_v3 is not None:
            sizes["UniswapV3Pool"] = v.uniswap_v3.pool
        gas.update({f"runtime size (bytes): {k}": n for k, n in code_sizes(sizes).items()})
        table[kind] = gas
    ref, v3 = table["reference"], table["uniswap-v3"]
    width = max(len(k) for k in v3)
    print("\nspot leg on the reference SpotPool vs on Uniswap v3 (full range, fee 500, via UniswapV3Spot):")
    print(f"  {'call':<{width}}  {'reference':>9}  {'uniswap-v3':>10}  {'v3 - ref':>8}")
    for name, used in v3.items():
        before = ref.get(name)
        shown = f"{before:,}" if before is not None else ""
        extra = f"{used - before:+,}" if before is not None else ""
        print(f"  {name:<{width}}  {shown:>9}  {used:>10,}  {extra:>8}")
    return table


def bench_replay() -> dict[str, object]:
    """Replay speed in both modes and memory against history length (seeded synthetic
    histories, so the figures compare run to run), and the headline yield on Binance ETH
    and BTC when the shared data is there (with the never-park hedge beside it)."""
    import time
    import tracemalloc

    from keeper.cli.replay import load_inputs
    from keeper.data.files import data_dir, synthetic_history
    from keeper.replay.anvil import run_chain_steps
    from keeper.replay.driver import ReplayConfig, history_steps
    from keeper.replay.exact import run_steps
    from keeper.replay.report import build_report

    config = ReplayConfig(depositors=3)
    out: dict[str, object] = {}

    prints, prices = synthetic_history(seed=7, days=35_000 // 24, interval_hours=1)
    steps = history_steps(prints[:35_000], prices, config.constant_price)
    started, cpu = time.perf_counter(), time.process_time()
    run_steps(steps, config, passive=False)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    out["model_35k_hourly_seconds"] = round(seconds, 3)
    out["model_35k_hourly_cpu_seconds"] = round(cpu_seconds, 3)
    out["model_steps_per_second"] = round(len(steps) / seconds)
    print(
        f"\nmodel replay: {len(steps):,} hourly steps in {seconds:.2f} s, CPU {cpu_seconds:.2f} s "
        f"({len(steps) / seconds:,.0f} steps/s; target < 2 s; the report's passive run is a second replay)"
    )

    # 45 days of 8h prints, stepped hourly: as many steps as a year of 8h steps used to be
    prints, prices = synthetic_history(seed=7, days=45)
    steps = history_steps(prints, prices, config.constant_price)
    result = run_chain_steps(steps, config, passive=False)
    out["chain_hourly_steps"] = len(steps)
    out["chain_loop_seconds"] = round(result.seconds, 2)
    out["chain_setup_seconds"] = round(result.setup_seconds, 2)
    out["chain_steps_per_second"] = round(len(steps) / result.seconds, 1)
    print(
        f"chain replay: {len(steps):,} hourly steps (45 days of 8h prints) in {result.seconds:.1f} s "
        f"+ {result.setup_seconds:.1f} s set-up ({len(steps) / result.seconds:.1f} steps/s; target >= 20)"
    )

    memory = {}
    for days in (91, 365, 1_461):
        prints, prices = synthetic_history(seed=7, days=days)
        steps = history_steps(prints, prices, config.constant_price)
        tracemalloc.start()
        run_steps(steps, config, passive=False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        memory[len(steps)] = peak
    sizes = sorted(memory)
    per_step = (memory[sizes[-1]] - memory[sizes[0]]) / (sizes[-1] - sizes[0])
    out["peak_memory_bytes_by_steps"] = memory
    out["memory_bytes_per_added_step"] = round(per_step)
    print(
        "peak memory of a model replay (tracemalloc): "
        + ", ".join(f"{n:,} steps {b / 2**20:.1f} MiB" for n, b in memory.items())
        + f"; {per_step:,.0f} bytes per added step (the kept per-step records)"
    )

    funding = data_dir() / "funding"
    prices_dir = data_dir() / "prices"
    yields = {}
    for coin in ("eth", "btc"):
        f = funding / f"binance_{coin}_funding.csv"
        p = prices_dir / f"binance_spot_{coin.upper()}USDT_8h_2020-2023_DERIVED_from_4h.csv"
        if not (f.is_file() and p.is_file()):
            continue
        inputs = load_inputs(str(f), str(p), config, None, None)
        r = run_steps(inputs.steps, config, end_price_e8=inputs.end_price_e8)
        rep = build_report(r)
        keys = (
            "net_apy",
            "gross_carry_apy",
            "capture_ratio",
            "passive_net_apy",
            "excess_vs_passive",
            "mean_short_to_nav",
            "min_margin_ratio_bps",
            "min_margin_ratio_steps_bps",
            "min_margin_ratio_at",
            "verdict",
        )
        yields[coin] = {k: rep[k] for k in keys}
        yields[coin]["rebalances"] = rep["rebalances"]["total"]
        print(
            f"Binance {coin.upper()} 8h 2020-2023 stepped hourly, model: net APY {rep['net_apy']:+.2%}, "
            f"carry "
            f"{rep['gross_carry_apy']:+.2%}, capture {rep['capture_ratio']:.1%}; never-park hedge "
            f"{rep['passive_net_apy']:+.2%} (excess {rep['excess_vs_passive'] * 100:+.2f} APY points, mean "
            f"short/NAV {rep['mean_short_to_nav']:.3f} vs {rep['passive']['mean_short_to_nav']:.3f}); "
            f"min margin {rep['min_margin_ratio_bps']} bps at the bars' extremes "
            f"({rep['min_margin_ratio_at']}), {rep['min_margin_ratio_steps_bps']} at the steps; "
            f"{rep['rebalances']['total']} rebalances; {rep['verdict']}"
        )
    out["binance_2020_2023"] = yields or "shared data not found"
    out["park_rule_targets"] = bench_targets()
    return out


def bench_targets() -> object:
    """Does parking pay? The default strategy against the never-park hedge on every
    recorded funding history, and the issue-12 targets (keeper.replay.targets)."""
    from dataclasses import asdict

    from keeper.data.files import data_dir, funding_files
    from keeper.replay.targets import run_all, table, verdicts

    paths = funding_files(data_dir())
    if not paths:
        return "shared data not found"
    rows, seconds, cpu = run_all(paths, jobs=2)
    print("\ndefault strategy vs never parking, model mode, every recorded funding history:")
    print(table(rows, seconds, cpu))
    return {
        "rows": [asdict(r) | {"excess_points": r.excess_points} for r in rows],
        "targets": [{"target": t, "met": m, "detail": d} for t, m, d in verdicts(rows)],
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
    }


@click.command(
    cls=ConnectedProviderCommand,
    short_help="Gas, keeper tick and replay benchmarks -> reports/bench.json (make bench).",
)
def cli() -> None:
    """Gas, keeper tick and replay benchmarks -> reports/bench.json (make bench)."""
    main()
