"""Issue 10, bullet 10: a stolen keeper key cannot drain by repetition. Each rebalance may
cost up to max_nav_loss_bps (50) of NAV; all the calls that start within the rules may cost
keeper_loss_budget_bps (150) of the NAV at the window's start per fixed 24 h window. A
keeper flipping a 5M vault between parked and a 3x hedge (each call ~40 bps, the pool
arbitraged back between calls so each bears its full cost) stops at the budget with
"hedge: keeper loss budget spent"; 24 h later it works again; a risk-reducing call after a
liquidation is never blocked by the budget."""

import ape
import pytest

from tests.fixtures.vault import delta_bps, hedge_targets, keep_fresh
from tests.units import E8, USDC

DAY = 86_400


def target(vault, perp, up: bool):
    """3x (the short scaled so the ~0.42 % spot buy fits the cash), or parked."""
    if not up:
        return (0, 0)
    short, margin = hedge_targets(vault, perp, 3.0)
    return (short * 994 // 1_000, margin)


def flip(vault, hedge, perp, keeper, chain, arb, venue, up: bool):
    tx = hedge.rebalance(*target(vault, perp, up), 50, chain.pending_timestamp + 3_600, sender=keeper)
    arb(venue)
    (log,) = tx.events.filter(hedge.Rebalanced)
    return log


def spend_budget(vault, hedge, perp, keeper, chain, arb, venue, rules):
    """Flips until the budget stops the keeper; returns (costs of the calls that went through)."""
    costs = []
    for i in range(10):
        up = i % 2 == 0
        nav = vault.totalAssets()
        aim = target(vault, perp, up)
        spent = hedge.budget_spent()
        try:
            costs.append(flip(vault, hedge, perp, keeper, chain, arb, venue, up).cost)
        except ape.exceptions.ContractLogicError as err:
            assert "hedge: keeper loss budget spent" in str(err)
            with ape.reverts("hedge: keeper loss budget spent"):
                hedge.rebalance(*aim, 50, chain.pending_timestamp + 3_600, sender=keeper)
            return costs
        assert 0 < costs[-1] <= nav * rules.max_nav_loss_bps // 10_000  # each within the per-call rule
        assert hedge.budget_spent() == spent + costs[-1]
    raise AssertionError(f"the budget never stopped the keeper: {costs}")


@pytest.fixture
def funded(vault, bob):
    vault.deposit(5_000_000 * USDC, bob, sender=bob)
    return vault


def test_keeper_budget__flips_stop_at_150_bps__a_restore_after_liquidation_passes__refills_after_24h(
    funded, hedge, perp, keeper, chain, arb, venue, feeder, liquidator, rules, warp
):
    """One spend of the budget (the slow part) serves three checks, in order."""
    vault = funded
    nav0 = vault.totalAssets()
    costs = spend_budget(vault, hedge, perp, keeper, chain, arb, venue, rules)
    budget = hedge.budget_nav() * rules.keeper_loss_budget_bps // 10_000
    assert hedge.budget_nav() == nav0
    spent = sum(costs)
    bps = [round(c * 10_000 / nav0, 1) for c in costs]
    print("keeper budget: calls", len(costs), "costs bps", bps, "spent", spent / USDC, "of", budget / USDC)
    assert hedge.budget_spent() == spent <= budget
    # stopped after about budget / worst loss calls: the next call would have gone over
    assert len(costs) == budget // max(costs) or spent + min(costs) > budget
    assert len(costs) >= rules.keeper_loss_budget_bps // rules.max_nav_loss_bps  # >= 3 calls
    assert spent * 10_000 <= nav0 * rules.keeper_loss_budget_bps  # at most 1.5 % lost in the day
    # 1. the budget stopped it hedged 3x (an odd number of flips from parked)
    assert len(costs) % 2 == 1 and hedge.short_size() > 0

    # 2. +32 %: the 3x short (margin ratio ~25 %) falls below maintenance and is liquidated; the
    # risk-reducing restore passes with the budget spent, and is not charged to it
    perp.accrue_funding(sender=feeder)
    venue.price_feed.set_price(venue.price_feed.latestAnswer() * 132 // 100, sender=feeder)
    perp.liquidate(hedge, sender=liquidator)
    venue.price_feed.set_price(3_000 * E8, sender=feeder)
    arb(venue)
    assert hedge.short_size() == 0 and abs(delta_bps(vault, perp, hedge)) > rules.max_delta_bps
    short, margin = hedge_targets(vault, perp, 2.0)
    tx = hedge.rebalance(short, margin, 50, chain.pending_timestamp + 3_600, sender=keeper)
    (log,) = tx.events.filter(hedge.Rebalanced)
    assert hedge.short_size() == short and abs(delta_bps(vault, perp, hedge)) <= rules.max_delta_bps
    assert log.cost <= log.nav_before * rules.max_nav_loss_bps // 10_000  # its own per-call bound
    assert hedge.budget_spent() == spent  # not charged
    print("risk-reducing restore with the budget spent: cost", log.cost / USDC)

    # 3. a new window 24 h after the first charge: the keeper may act again
    warp(DAY)
    keep_fresh(venue, feeder)
    arb(venue)
    window = hedge.budget_window_start()
    log = flip(vault, hedge, perp, keeper, chain, arb, venue, False)
    assert hedge.budget_window_start() >= window + DAY
    assert hedge.budget_spent() == log.cost and hedge.budget_nav() == log.nav_before
