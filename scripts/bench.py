"""Gas benchmark of the reference venue: `make bench` (ape run bench).

Deploys the venue on a throwaway anvil, then runs one fixed sequence of calls and records
each receipt's gas used. Gas is deterministic for a given compiler and sequence, so these
figures are comparable run to run. Prints a table and writes reports/bench.json.
"""

import json
from pathlib import Path

from ape import accounts, chain, project

from keeper.venue import VenueParams, deploy_venue

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

    width = max(len(k) for k in gas)
    print(f"\n{'call':<{width}}  gas")
    for name, used in gas.items():
        print(f"{name:<{width}}  {used:>7,}")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"gas": gas}, indent=2) + "\n")
    print(f"\nwritten: {REPORT}")
