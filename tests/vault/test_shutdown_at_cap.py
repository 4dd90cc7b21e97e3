"""Issue 10, bullet 5: shutdown at the deposit-cap ceiling. A 10M USDC vault hedged 2x on
the default venue (spot ~6.65M, ~2,217 ETH). v1's `shutdown()` sold the whole spot leg in
one call, which on the default pool fills worse than the 50 bps rule above ~4.5M: the vault
could not be shut down. v2: `shutdown()` sets the flag; `unwind(step)` steps (anyone), each
fill within `max_slippage_bps` of the oracle, reach a flat hedge; exits work between steps."""

import ape
import pytest

from tests.fixtures.vault import build_hedge, fund, usd
from tests.units import USDC

STEP = 500 * 10**18  # 500 ETH (~1.5M) per step


@pytest.fixture
def at_cap(vault, hedge, venue, perp, keeper, alice, bob, usdc, rules, chain, arb):
    fund(usdc, vault, bob, 4_000_000 * USDC)  # bob: 9M in all
    vault.deposit(1_000_000 * USDC, alice, sender=alice)
    vault.deposit(9_000_000 * USDC, bob, sender=bob)
    assert vault.totalAssets() == rules.deposit_cap_ceiling == 10_000_000 * USDC
    assert vault.maxDeposit(alice) == 0
    # the keeper builds it in 5 steps too (one 6.65M buy fills beyond 50 bps)
    build_hedge(vault, hedge, perp, keeper, chain, arb, venue, 2.0, steps=5)
    return vault


def test_shutdown__at_the_10m_cap_ceiling__one_unwind_reverts_500_eth_steps_reach_flat(
    at_cap, hedge, venue, perp, guardian, stranger, alice, usdc, arb, rules
):
    vault = at_cap
    price = venue.price_feed.latestAnswer()
    short, spot = hedge.short_size(), hedge.spot_base()
    print("at cap: NAV", vault.totalAssets() / USDC, "short", short / 1e18, "spot", spot / 1e18)
    vault.shutdown(sender=guardian)
    # one step for the whole size: the ~6.65M spot sale fills beyond the 50 bps rule
    with ape.reverts("pool: output below minimum"):
        hedge.unwind(short, sender=stranger)
    steps, gas = 0, []
    while hedge.active():
        tx = hedge.unwind(STEP, sender=stranger)
        steps += 1
        gas.append(tx.gas_used)
        (log,) = tx.events.filter(hedge.Unwound)
        # every fill within max_slippage_bps of the oracle: the spot sale ...
        spot_proceeds = log.proceeds - log.margin_withdrawn
        assert spot_proceeds * 10_000 >= usd(log.spot_sold, price) * (10_000 - rules.max_slippage_bps)
        # ... and the perp buy-back
        for fill in tx.events.filter(perp.PositionModified):
            assert fill.size_delta > 0
            assert fill.fill_price_e8 * 10_000 <= price * (10_000 + rules.max_slippage_bps)
        if steps == 2:
            # exits work between steps: alice leaves with its pro-rata slice
            shares = vault.balanceOf(alice)
            nav_share = vault.convertToAssets(shares)
            pps = vault.convertToAssets(10**18)
            paid = vault.redeem(shares, alice, alice, sender=alice).return_value
            assert nav_share * 9_940 // 10_000 <= paid <= nav_share
            assert vault.convertToAssets(10**18) >= pps - 1
        arb(venue)  # arbitrageurs bring the pool back to the oracle between steps
    print("unwind at cap: steps", steps, "gas per step", gas)
    assert steps == 5  # ceil(2,217 ETH / 500)
    assert max(gas) < 700_000, gas
    assert not hedge.active() and perp.position(hedge).margin == 0
    assert vault.idle() == vault.totalAssets() == usdc.balanceOf(vault)
    assert vault.totalAssets() > 9_000_000 * USDC * 9_950 // 10_000  # alice took ~1M out
