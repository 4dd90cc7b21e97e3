"""`decide`, one behaviour per case, on worlds built with the tests' vault transcription.
Every proposal is executed on that world, so a case also shows the vault accepts it."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from keeper.bot.strategy import (
    EmergencyDeleverage,
    Hold,
    Intent,
    Rebalance,
    Settings,
    Unwind,
    decide,
    entry_cost,
    round_trip_cost,
)
from keeper.core.fixed import BPS, PRICE_UNIT
from keeper.core.rules import VaultRules
from tests.keeper.world import World, apply, flat_view, path_view

USDC = 10**6
GOOD = "0.00002"  # 17.5 % a year: clears re-entry and the cost hurdle
MEH = "0.000002"  # between the park rate (0) and re-entry (1e-5)
BAD = "-0.00001"  # shorts pay 8.8 % a year: not for long enough to pay for a park
# shorts pay 0.16 %/8h: the 48 h of it a flat view shows, 39 % of it repeated over three
# days (`park_persistence`), is more than a park and re-entry cost (~0.37 % of the short)
DEEP = "-0.0002"
DEFAULT = Settings()


def hedged(leverage: float = 2.0, deposit: int = 300_000, **venue) -> World:
    world = World.new(**venue)
    world.fund(deposit * USDC)
    world.open_hedge(leverage)
    return world


def parked(deposit: int = 300_000, **venue) -> World:
    world = World.new(**venue)
    world.fund(deposit * USDC)
    return world


def moved(world: World, pct: int) -> World:
    """An hour later the oracle is `pct` % higher and arbitrageurs have levelled the pool."""
    world.warp(3_600)
    world.push_price(world.price * (100 + pct) // 100)
    world.arb_pool()
    return world


def run(world: World, rate: str = GOOD, settings: Settings = DEFAULT, views=None):
    """Decide, execute the proposal on the world (the vault must accept it), return both."""
    decision = decide(world.state(), views if views is not None else [flat_view(world.now, rate)], settings)
    apply(world, decision.action)
    return decision


def rebalance(decision, intent: Intent) -> Rebalance:
    assert isinstance(decision.action, Rebalance), decision.reason
    assert decision.action.intent is intent, decision.reason
    return decision.action


def held(decision, *words: str, alert: bool = False) -> Hold:
    assert isinstance(decision.action, Hold), decision.reason
    for word in words:
        assert word in decision.reason
    assert decision.action.alert is alert
    return decision.action


# ------------------------------------------------------------------ parked


def test_decide__parked_with_good_funding__enters_at_the_target_leverage():
    world = parked()
    nav = world.state().gross_nav
    action = rebalance(run(world), Intent.ENTER)
    state = world.state()
    assert 4_950 <= state.margin_ratio_bps <= 5_000  # equity / notional = 1 / 2x
    assert state.delta_bps <= 1
    assert state.idle == pytest.approx(
        nav * DEFAULT.idle_reserve_bps // BPS, rel=0.01
    )  # only the reserve left
    assert 0 < nav - state.nav < nav * 10 // BPS  # under 10 bps of NAV to enter
    assert action.expected.nav_after == state.nav  # the model priced it to the wei
    assert action.max_slippage_bps == 50


def test_decide__after_entering__holds():
    world = parked()
    run(world)
    held(run(world), "hedged and in band")


def test_decide__parked_funding_between_park_and_reentry__holds():
    held(run(parked(), MEH), "below re-entry")


def test_decide__parked_funding_clears_reentry_but_not_the_cost_hurdle__holds():
    short_horizon = Settings(hurdle_horizon_hours=48)
    held(run(parked(), "0.00001", short_horizon), "below the cost hurdle")
    rebalance(run(parked(), "0.00001"), Intent.ENTER)  # a 14-day horizon pays for it


def test_decide__large_entry_into_a_shallow_pool__enters_in_batches():
    world = parked(deposit=3_000_000, pool_asset=20_000_000 * USDC)
    action = rebalance(run(world), Intent.ENTER)
    assert "of the way" in action.reason
    held(run(world), "from the oracle")  # its own buying moved the shallow pool: wait
    world.arb_pool()
    second = rebalance(run(world), Intent.DEPLOY)  # arbitraged back: the next batch
    assert second.target_short > action.target_short


# ------------------------------------------------------------------ funding and hysteresis


def test_decide__hedged_funding_deeply_negative__parks_everything():
    world = hedged()
    decision = run(world, DEEP)
    rebalance(decision, Intent.PARK)
    assert "the last 72 h" in decision.reason and "round trip" in decision.reason
    state = world.state()
    assert state.short_size == state.spot_base == state.perp_margin == 0
    assert state.idle == state.nav


def test_decide__after_parking__stays_parked_while_funding_is_below_reentry():
    world = hedged()
    run(world, DEEP)
    held(run(world, DEEP), "parked")
    held(run(world, MEH), "below re-entry")
    rebalance(run(world, GOOD), Intent.ENTER)


def test_decide__hedged_funding_between_park_and_reentry__stays_hedged():
    held(run(hedged(), MEH), "hedged and in band")


SLIGHTLY_BAD = "-0.000002"  # shorts pay 1.75 % a year: less than a park and re-entry cost


def test_decide__hedged_funding_negative_but_below_the_park_hurdle__stays_hedged():
    """Parking starts a round trip (exit now, re-entry later): it pays only when the funding
    the short would pay while parked, forecast from what it paid over the trailing spans,
    is more than that round trip."""
    held(run(hedged(), SLIGHTLY_BAD), "not parking", "costs less than parking and re-entering")
    held(run(hedged(), BAD), "not parking", "costs less than parking and re-entering")
    rebalance(run(hedged(), DEEP), Intent.PARK)
    # the same spell, were a tenth of it repeated, does not pay for the trip
    doubtful = Settings(park_persistence=tuple(r / 10 for r in DEFAULT.park_persistence))
    held(run(hedged(), DEEP, doubtful), "not parking", "wei avoided")


def test_decide__hedged_funding_negative_below_the_park_hurdle__bands_still_fixed():
    world = moved(hedged(), 18)  # +18 %: margin thin
    rebalance(run(world, SLIGHTLY_BAD), Intent.MARGIN_THIN)


def test_decide__a_short_deep_dip__does_not_pay_a_round_trip__stays_hedged():
    """Twelve hours at -0.24 %/8h after two weeks of carry: the day's mean is deeply
    negative (the old rule, 14 days at the day's rate, parked on it), but the last three
    days paid far less than a round trip, and dips like it were over within the day."""
    world = hedged()
    view = path_view(world.now, (14 * 24, GOOD), (12, "-0.0003"))
    decision = run(world, views=[view])
    held(decision, "not parking", "the last 72 h")
    assert decision.signals.funding.expected_rate_per_hour < Decimal("-0.0001")


def test_decide__a_long_deep_spell__parks_once_it_has_lasted():
    """-0.04 %/8h against a round trip of ~0.18 % of the short (this vault's): two days of
    it are not yet evidence enough (the last three days' funding, 39 % of it repeated, is
    less than the trip); six days are (the last six days', 42 % of it repeated, beat it)."""
    world = hedged()
    held(run(world, views=[path_view(world.now, (10 * 24, GOOD), (2 * 24, "-0.00005"))]), "not parking")
    held(run(world, views=[path_view(world.now, (10 * 24, GOOD), (3 * 24, "-0.00005"))]), "not parking")
    decision = run(world, views=[path_view(world.now, (10 * 24, GOOD), (6 * 24, "-0.00005"))])
    rebalance(decision, Intent.PARK)
    assert "the last 144 h" in decision.reason


def test_decide__parked__reenters_when_the_carry_pays_for_the_entry():
    """Re-entry reads the day (a recovered market is re-entered within it, not after the
    long spans forget the spell): the day's rate over the entry horizon must pay the
    entry's modelled cost, its exit's fees and gas, and clear the re-entry rate."""
    world = hedged()
    run(world, DEEP)
    assert world.state().parked
    spell = (6 * 24, DEEP)
    held(run(world, views=[path_view(world.now, spell, (24, MEH))]), "below re-entry")
    rebalance(run(world, views=[path_view(world.now, spell, (24, GOOD))]), Intent.ENTER)


def test_round_trip_cost__the_basis_is_part_of_the_trip():
    """Buying the short back at a premium costs it; selling it again at one earns it."""
    short = 1_000_000 * USDC
    assert round_trip_cost(short, 1_000, 900, 2) == 1_902
    assert round_trip_cost(short, 1_000, 900, 2, Decimal("0.001")) == 1_902 + 1_000 * USDC
    assert round_trip_cost(short, 1_000, 900, 2, Decimal("0.001"), Decimal("0.001")) == 1_902
    assert round_trip_cost(short, 1_000, 900, 2, Decimal(0), Decimal("0.0005")) == 1_902 - 500 * USDC
    # an entry that sells the short at a premium has that much less to earn back
    assert entry_cost(short, 1_000, 500, 2) == 1_502
    assert entry_cost(short, 1_000, 500, 2, Decimal("0.0001")) == 1_502 - 100 * USDC


# ------------------------------------------------------------------ deploying idle


def test_decide__hedged_with_new_deposits__deploys_them():
    world = hedged()
    world.fund(100_000 * USDC)
    short_before = world.short_size
    action = rebalance(run(world), Intent.DEPLOY)
    assert action.target_short > short_before
    assert world.state().idle < world.state().nav * 20 // BPS


def test_decide__new_deposits_while_funding_is_mediocre__stay_idle():
    world = hedged()
    world.fund(100_000 * USDC)
    held(run(world, MEH), "hedged and in band")


# ------------------------------------------------------------------ bands


def test_decide__price_up_margin_thin__sells_spot_and_buys_back_short():
    world = moved(hedged(), 18)
    assert world.state().margin_ratio_bps < DEFAULT.margin_ratio_low_bps
    idle = world.idle
    short = world.short_size
    action = rebalance(run(world, MEH), Intent.MARGIN_THIN)
    assert action.target_short < short
    assert 4_950 <= world.state().margin_ratio_bps <= 5_050
    assert idle <= world.idle <= idle + 1_000  # paid for by the spot sold, not by idle
    held(run(world, MEH), "in band")


def test_decide__price_down_margin_fat__withdraws_margin_and_grows_the_hedge():
    world = moved(hedged(), -20)
    assert world.state().margin_ratio_bps > DEFAULT.margin_ratio_high_bps
    short = world.short_size
    action = rebalance(run(world, MEH), Intent.MARGIN_FAT)
    assert action.target_short > short
    assert 4_950 <= world.state().margin_ratio_bps <= 5_050


def test_decide__margin_fat_while_funding_unknown__does_not_relever():
    world = moved(hedged(), -20)
    held(run(world, views=[]), "not re-levering")


def test_decide__spot_drifted_off_the_short__rehedges():
    world = hedged()
    world.spot_base = world.spot_base * 97 // 100
    assert world.state().delta_bps > DEFAULT.delta_band_bps
    rebalance(run(world, MEH), Intent.REHEDGE)
    assert world.state().delta_bps <= 1


# ------------------------------------------------------------------ critical


def test_decide__margin_near_critical__deleverages_at_once():
    world = moved(hedged(), 35)
    ratio = world.state().margin_ratio_bps
    assert ratio < world.rules.critical_margin_ratio_bps + DEFAULT.critical_buffer_bps
    rebalance(run(world, MEH), Intent.CRITICAL)
    assert world.state().margin_ratio_bps >= 4_950


def test_decide__margin_near_critical__acts_even_into_a_dislocated_pool_and_bad_basis():
    world = moved(hedged(), 35)
    world.arb_pool(world.price * 9_965 // BPS)  # pool 35 bps under the oracle: beyond the 30 bps guard
    assert world.state().pool_dislocation_bps < -DEFAULT.max_pool_dislocation_bps
    rebalance(run(world, BAD), Intent.CRITICAL)


def test_decide__margin_near_critical__uses_idle_first_and_never_overshoots_the_band():
    world = moved(hedged(), 35)
    world.fund(200_000 * USDC)  # idle enough to restore the margin without selling
    short = world.short_size
    action = rebalance(run(world, MEH), Intent.CRITICAL)
    assert action.target_short == short  # a top-up from idle: nothing sold
    assert world.state().margin_ratio_bps <= DEFAULT.margin_ratio_high_bps


def test_decide__below_critical_and_no_rebalance_fits__emergency_deleverage():
    world = moved(hedged(), 40)
    # a vault whose NAV-loss rule leaves no room for any keeper rebalance
    world.rules = dataclasses.replace(world.rules, max_nav_loss_bps=1)
    assert world.state().margin_ratio_bps < world.rules.critical_margin_ratio_bps
    decision = run(world, MEH)
    assert isinstance(decision.action, EmergencyDeleverage), decision.reason
    assert world.state().margin_ratio_bps > world.rules.min_margin_ratio_bps


# ------------------------------------------------------------------ market conditions


def test_decide__pool_dislocated_from_the_oracle__does_not_trade_into_it():
    world = parked()
    world.arb_pool(world.price * 9_950 // BPS)
    held(run(world), "from the oracle", "not trading into it")


def test_decide__basis_unfavourable__waits_to_enter():
    world = parked()
    world.arb_pool(world.price * 10_025 // BPS)  # spot 25 bps rich to the perp: buying it costs
    held(run(world), "basis")


def test_decide__basis_favourable__enters_cheaper():
    at_parity = rebalance(run(parked()), Intent.ENTER)
    world = parked()
    world.arb_pool(world.price * 9_980 // BPS)  # spot 20 bps cheap to the perp
    cheap = rebalance(run(world), Intent.ENTER)
    assert cheap.expected.cost < at_parity.expected.cost


def test_decide__action_worth_less_than_its_gas__skipped():
    held(run(parked(deposit=50)), "hurdle")
    tiny = moved(hedged(deposit=150), 18)  # thin margin, but a $150 vault
    held(run(tiny, MEH), "minimum action value")


# ------------------------------------------------------------------ refusing to act


def test_decide__shut_down__unwinds_in_steps_until_flat_then_holds():
    world = hedged()
    world.is_shutdown = True
    steps = 0
    while True:
        decision = run(world, GOOD)
        if isinstance(decision.action, Hold):
            break
        assert isinstance(decision.action, Unwind), decision.reason
        steps += 1
        assert steps < 50
    held(decision, "shut down", "unwound")
    assert not world.active() and world.idle > 0
    assert steps == 1  # a 300k vault unwinds in one step within the slippage rule


def test_decide__shut_down_at_the_cap__unwind_steps_each_within_the_slippage_rule():
    world = World.new(pool_asset=400_000_000 * USDC)
    for _ in range(10):  # built up at the deposit cap ceiling, 1M at a time
        world.fund(1_000_000 * USDC)
        world.open_hedge(2.0)
        world.warp(86_400)  # a new keeper budget window for the next
        world.push_price(world.price)
        world.arb_pool()
    assert world.nav() >= 9_900_000 * USDC
    world.is_shutdown = True
    sizes = []
    for _ in range(40):
        decision = run(world, GOOD)
        if isinstance(decision.action, Hold):
            break
        assert isinstance(decision.action, Unwind), decision.reason
        assert decision.action.expected.worst_fill_bps <= DEFAULT.max_slippage_bps
        sizes.append(decision.action.max_size)
        world.warp(60)
        world.arb_pool()  # arbitrageurs level the pool between steps
    assert len(sizes) > 1 and not world.active()


def test_decide__stale_oracle__holds_and_alerts():
    world = hedged()
    world.warp(world.rules.max_oracle_age + 1)
    held(run(world, BAD), "oracle answer", alert=True)


def test_decide__liquidated__restores_the_hedge_within_the_rules_not_charged_to_the_budget():
    world = moved(hedged(), 49)
    world.liquidate()  # the venue closed the short; the hedge has not booked it yet
    state = world.state()
    assert state.liquidated and state.short_size == 0 and state.spot_base > 0
    spent = world.budget_spent  # the opening rebalance's cost
    decision = run(world, GOOD)
    action = rebalance(decision, Intent.ENTER)
    assert action.expected.risk_reducing
    assert world.booked_short == world.short_size > 0  # booked, then re-hedged
    assert world.budget_spent == spent
    assert world.liquidations and world.liquidations[0][1] == 0


def test_decide__liquidated_and_funding_unknown__parks_the_unhedged_spot():
    world = moved(hedged(), 49)
    world.liquidate()
    decision = run(world, GOOD, views=[flat_view(world.now, GOOD, hours=6)])
    rebalance(decision, Intent.PARK)
    assert world.spot_base < world.state().base_unit // 100 or world.state().delta_bps <= 200


def test_decide__funding_history_too_short__no_funding_driven_moves():
    world = parked()
    held(run(world, GOOD, views=[flat_view(world.now, GOOD, hours=6)]), "unknown")
    world = hedged()
    held(run(world, BAD, views=[flat_view(world.now, BAD, hours=0)]), "in band")


# ------------------------------------------------------------------ across venues


def test_decide__reference_rate_far_above_other_venues__the_median_decides():
    world = parked()
    views = [
        flat_view(world.now, "0.0001"),  # the reference venue alone is hot
        flat_view(world.now, MEH, "hyperliquid"),
        flat_view(world.now, MEH, "dydx"),
    ]
    decision = run(world, views=views)
    held(decision, "below re-entry")
    assert decision.signals.funding.expected_rate_per_hour == Decimal(MEH)
    assert decision.signals.funding.spread_per_hour == Decimal("0.0001") - Decimal(MEH)


def test_decide__reference_rate_low_while_others_are_high__entries_read_it_parking_reads_the_pack():
    """The low side for entries (a low reference is what the vault is paid), the high side
    for parking (a reference far below the pack is a cold spell arbitrage closes: no reason
    to start a round trip, as one far above it is no reason to enter)."""
    world = parked()
    views = [
        flat_view(world.now, MEH),
        flat_view(world.now, GOOD, "hyperliquid"),
        flat_view(world.now, GOOD, "dydx"),
    ]
    held(run(world, views=views), "below re-entry")
    world = hedged()
    views = [
        flat_view(world.now, DEEP),
        flat_view(world.now, GOOD, "hyperliquid"),
        flat_view(world.now, GOOD, "dydx"),
    ]
    decision = run(world, views=views)
    held(decision, "in band")
    assert decision.signals.funding.expected_rate_per_hour == Decimal(DEEP)
    assert decision.signals.funding.optimistic_rate_per_hour == Decimal(GOOD)
    views[1] = flat_view(world.now, DEEP, "hyperliquid")  # the pack agrees
    rebalance(run(world, views=views), Intent.PARK)


def test_decide__without_a_view_of_the_reference__it_is_read_from_state_but_never_acted_on():
    world = parked()
    decision = run(world, views=[flat_view(world.now, GOOD, "hyperliquid")])
    held(decision, "unknown")
    assert decision.signals.funding.reference is not None


# ------------------------------------------------------------------ purity


def test_decide__pure__same_inputs_same_decision_and_nothing_mutated():
    world = moved(hedged(), 18)
    state = world.state()
    views = [flat_view(world.now, GOOD)]
    first = decide(state, views, DEFAULT)
    assert decide(state, views, DEFAULT) == first
    assert world.state() == state


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reentry_rate_per_hour": Decimal(0)}, "hysteresis"),
        ({"target_leverage": Decimal(4)}, "must lie inside"),
        ({"deploy_min_idle_bps": 5}, "deploy_min_idle_bps"),
        ({"slippage_headroom_bps": 50}, "slippage_headroom_bps"),
        ({"target_leverage": Decimal(0)}, "greater than 0"),
        ({"unknown_knob": 1}, "Extra inputs"),
    ],
)
def test_settings__inconsistent__refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        Settings(**overrides)


def test_settings__problems_against_the_vaults_rules():
    assert DEFAULT.problems(VaultRules()) == []
    tight = VaultRules(max_leverage_bps=15_000, max_slippage_bps=30, max_delta_bps=100)
    found = DEFAULT.problems(tight)
    assert any("target leverage" in p for p in found)
    assert any("max_slippage_bps" in p for p in found)
    assert any("delta_band_bps" in p for p in found)
    assert "margin_ratio_low_bps" in " ".join(Settings(margin_ratio_low_bps=1_400).problems(VaultRules()))


def test_settings__frozen():
    with pytest.raises(ValueError):
        DEFAULT.target_leverage = Decimal(3)  # type: ignore[misc]


def test_price_helper_sanity():
    assert World.new().price == 3_000 * PRICE_UNIT


# ------------------------------------------------------------------ the keeper's loss budget


def test_decide__keeper_budget_spent__no_losing_rebalance_until_the_window_ends():
    world = hedged()
    world.warp(3_600)
    world.push_price(world.price)
    world.budget_window_start = world.now
    world.budget_nav = world.nav()
    world.budget_spent = world.budget_nav * world.rules.keeper_loss_budget_bps // BPS  # all of it
    assert world.state().budget_left == 0
    decision = run(world, DEEP)  # shorts pay: the keeper wants out, but parking loses NAV
    if isinstance(decision.action, Rebalance):
        assert decision.action.expected.cost <= 0 or decision.action.expected.risk_reducing
    else:
        held(decision, "keeper loss budget spent", alert=True)  # an operator should know
    world.warp(86_400)
    world.push_price(world.price)
    assert world.state().budget_left is None
    rebalance(run(world, DEEP), Intent.PARK)


def test_decide__keeper_budget_nearly_spent__a_move_is_cut_to_what_is_left():
    world = hedged(deposit=1_000_000)
    world.fund(1_000_000 * USDC)  # idle to deploy: a costly move
    world.budget_window_start = world.now
    world.budget_nav = world.nav()
    allowed = world.budget_nav * world.rules.keeper_loss_budget_bps // BPS
    world.budget_spent = allowed - 50 * USDC  # 50 USDC left today
    decision = run(world, GOOD)
    if isinstance(decision.action, Rebalance):
        assert decision.action.expected.cost <= 50 * USDC
        assert world.budget_spent <= allowed
