"""`make demo`, foundation stage: one hand-built basis hedge on the reference venue.

What it does: deploys the venue on a throwaway anvil; a depositor splits 100,000 USDC into
spot WETH and perp margin at 2x short leverage (spot = NAV x 2/3, margin = NAV / 3), opens
an equal short, and then a week passes with funding at 0.00125 %/h (Binance's 0.01 % per
8 h) and a moving ETH price. Each day it prints the legs at the oracle: price moves cancel,
funding accrues.

What it does not do yet: run the BasisVault (the contract is built and tested) through
deploy/deposit scripts, a keeper and a replay; those arrive with their issues, and
`make demo` grows with them.
"""

from ape import accounts, chain, project

from keeper.model.venue import rate_per_second
from keeper.venue import VenueParams, deploy_venue

E8 = 10**8
SIZE = 10**18
DAY = 86_400
PRICES = [3_000, 3_090, 2_950, 2_820, 2_990, 3_150, 3_060, 3_120]  # daily closes, USD


def usd(wei: int) -> str:
    return f"{wei / 10**6:>12,.2f}"


def main() -> None:
    deployer, depositor = accounts.test_accounts[:2]
    p = VenueParams()
    v = deploy_venue(project, deployer, p)
    usdc, weth, pool, perp, feed = v.asset, v.base, v.spot_pool, v.perp_market, v.price_feed
    print("\nReference venue deployed:")
    for name, addr in v.addresses().items():
        print(f"  {name:<12} {addr}")

    nav = p.asset_wei(100_000)
    usdc.mint(depositor, nav, sender=depositor)
    usdc.approve(pool, 2**256 - 1, sender=depositor)
    usdc.approve(perp, 2**256 - 1, sender=depositor)
    spot_budget = nav * 2 // 3
    bought = pool.swap(usdc, spot_budget, 0, depositor, sender=depositor).return_value
    perp.deposit_margin(nav - spot_budget, sender=depositor)
    fill = perp.modify_position(-bought, 0, sender=depositor).return_value
    print(
        f"\nHedge opened: bought {bought / SIZE:.4f} WETH for {usd(spot_budget).strip()} USDC, "
        f"shorted the same at {fill / E8:,.2f}; margin {usd(nav - spot_budget).strip()} USDC"
    )
    perp.set_funding_rate(rate_per_second(0.0000125), sender=deployer)

    def legs() -> tuple[int, int]:
        price = perp.index_price()
        spot_value = weth.balanceOf(depositor) * price * 10**6 // (SIZE * E8)
        return spot_value, perp.position(depositor).equity

    print(
        f"\n{'day':>3} {'ETH/USD':>9} {'spot (USDC)':>12} {'perp equity':>12} {'total':>12} {'funding':>12}"
    )
    funding_total = 0
    for day, price in enumerate(PRICES):
        if day:
            chain.mine(deltatime=DAY)
            perp.accrue_funding(sender=deployer)
            feed.set_price(price * E8, sender=deployer)
        spot_value, equity = legs()
        funding_total = perp.position(depositor).accrued_funding
        total = usd(spot_value + equity)
        print(f"{day:>3} {price:>9,} {usd(spot_value)} {usd(equity)} {total} {usd(funding_total)}")
    spot_value, equity = legs()
    total = spot_value + equity
    print(
        f"\nAfter 7 days: {usd(total).strip()} USDC from {usd(nav).strip()}; funding earned "
        f"{usd(funding_total).strip()}, the rest is entry costs (spot fee + impact, perp fee + impact).\n"
        "Not in this demo yet: the BasisVault (built and tested: `make test`, docs/vault.md) driven\n"
        "by the deploy/deposit scripts, the keeper and the replay report, still to come (see `issues`).\n"
        "This demo exercises the reference venue only."
    )
