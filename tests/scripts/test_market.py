"""The market feeder (what `ape run market ...` runs): price, funding, arb, replay, mirror."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from keeper.core.errors import UserError
from keeper.core.units import parse_rate, rate_per_second_e18
from keeper.data.hyperliquid import parse_meta_and_asset_ctxs
from keeper.ops import actions, feeder
from tests.fixtures.data import FIXTURES

E8 = 10**8
HL_FIXTURE = FIXTURES / "api" / "hyperliquid_metaAndAssetCtxs.json"


def test_price__accrues_funding_then_starts_a_round(dep, chain, admin):
    feeder.set_funding(dep, admin, Decimal("0.0001"), "1h")
    chain.mine(deltatime=3_600)
    push = feeder.push_price(dep, admin, Decimal("3100.5"))
    assert (push.old_e8, push.new_e8) == (3_000 * E8, 310_050_000_000)
    assert push.move_bps == pytest.approx(Decimal("335"), abs=1)
    # The hour at the old price was charged before the new price existed.
    assert dep.perp_market.last_funding_time() == dep.price_feed.latestRoundData()[3]
    assert dep.price_feed.latestAnswer() == 310_050_000_000


def test_price__needs_the_feeder_role(dep, alice):
    with pytest.raises(UserError, match=r"cannot push prices: it lacks FEEDER_ROLE on 0x.* grant the role"):
        feeder.push_price(dep, alice, Decimal(3_000))


def test_funding__per_8h_and_negative(dep, admin):
    old, new = feeder.set_funding(dep, admin, Decimal("0.0001"), "8h")
    assert old == 0 and new == dep.perp_market.funding_rate() == rate_per_second_e18(
        Decimal("0.0001"), 28_800
    )
    _, new = feeder.set_funding(dep, admin, Decimal("-0.00005"), "1h")
    assert new == dep.perp_market.funding_rate() < 0
    assert "-0.005000 %/h" in feeder.describe_rate(new)


def test_funding__beyond_the_cap_is_refused_before_sending(dep, admin):
    nonce = admin.nonce
    with pytest.raises(
        UserError, match=r"funding 5.000000 % per 1h is 5.0000 %/h, beyond the market's cap of 4.00 %/h"
    ):
        feeder.set_funding(dep, admin, Decimal("0.05"), "1h")
    with pytest.raises(UserError, match="--per must be one of 1h, 8h"):
        feeder.set_funding(dep, admin, Decimal("0.0001"), "4h")
    assert admin.nonce == nonce


def test_funding__needs_the_operator_role(dep, alice):
    with pytest.raises(UserError, match="cannot set the funding rate: it lacks OPERATOR_ROLE"):
        feeder.set_funding(dep, alice, Decimal("0.0001"))


def test_premium__percent_bps_or_plain_decimal_moves_the_mark(dep, admin):
    old, new = feeder.set_premium(dep, admin, parse_rate("0.2%", "premium"))
    assert (old, new) == (0, 2 * 10**15) and dep.perp_market.premium() == new
    assert dep.perp_market.mark_price() == 3_006 * E8 and dep.perp_market.index_price() == 3_000 * E8
    assert feeder.describe_premium(new) == "+0.2000 % (+20.0 bps)"
    old, new = feeder.set_premium(dep, admin, parse_rate("-15bps", "premium"))
    assert (old, new) == (2 * 10**15, -15 * 10**14)
    assert dep.perp_market.mark_price() == 299_550_000_000
    _, new = feeder.set_premium(dep, admin, parse_rate("0.001", "premium"))
    assert new == 10**15 and feeder.describe_premium(new) == "+0.1000 % (+10.0 bps)"


def test_premium__status_shows_the_mark_and_the_premium(dep, chain, admin):
    feeder.set_premium(dep, admin, Decimal("-0.0025"))
    s = actions.status(dep, chain)
    assert (s["perp_mark_price_e8"], s["perp_premium_e18"]) == (299_250_000_000, -25 * 10**14)
    assert (s["perp_mark_price"], s["perp_premium_bps"]) == ("2992.50", "-25.0")
    assert (
        "perp mark       2992.50 USD, premium -25.0 bps over the oracle (the index)"
        in actions.format_status(s)
    )


def test_premium__the_command_prints_mark_and_index(dep, admin, capsys):
    """`ape run market premium -0.5%` without the process (its body, given the session)."""
    from types import SimpleNamespace

    from keeper.cli.market import _premium

    feeder.set_premium(dep, admin, Decimal(0))
    _premium(SimpleNamespace(deployment=lambda: dep), admin, "-0.5%")
    out = capsys.readouterr().out
    assert out.strip() == (
        "premium +0.0000 % (+0.0 bps) -> -0.5000 % (-50.0 bps): mark 2,985.00 USD over the index "
        "3,000.00 USD (funding unchanged)"
    )
    assert dep.perp_market.premium() == -5 * 10**15


def test_premium__beyond_the_bound_or_not_a_number_is_refused_before_sending(dep, admin):
    nonce = admin.nonce
    with pytest.raises(UserError, match=r"premium \+12 % is beyond the market's bound of \+-10 %"):
        feeder.set_premium(dep, admin, parse_rate("12%", "premium"))
    with pytest.raises(UserError, match=r"premium -10.0000001 % is beyond"):
        feeder.set_premium(dep, admin, Decimal("-0.100000001"))
    with pytest.raises(UserError, match="premium 'rich' is not a number"):
        parse_rate("rich", "premium")
    assert admin.nonce == nonce
    _, new = feeder.set_premium(dep, admin, Decimal("-0.1"))  # the bound itself is fine
    assert new == -(10**17)


def test_premium__needs_the_operator_role(dep, alice):
    with pytest.raises(UserError, match="cannot set the premium: it lacks OPERATOR_ROLE"):
        feeder.set_premium(dep, alice, Decimal("0.001"))


def test_arb__brings_the_pool_to_the_oracle(dep, admin, stranger):
    feeder.push_price(dep, admin, Decimal(3_150))
    before, after = feeder.arb(dep, stranger)  # anyone may arbitrage
    assert before == pytest.approx(3_000 * E8, rel=1e-5)
    assert after == pytest.approx(3_150 * E8, rel=1e-4)


# ----------------------------------------------------------------------------- replay


def write_csv(tmp_path, text):
    path = tmp_path / "history.csv"
    path.write_text(text)
    return path


def test_replay__warps_the_chain_by_each_gap(dep, chain, admin, tmp_path):
    path = write_csv(
        tmp_path,
        "timestamp,price,funding_rate\n"
        "2024-01-01T00:00:00Z,3000,0.0001\n"
        "2024-01-01T08:00:00Z,3100.25,0.0002\n"
        "1704124800,2950,\n",  # 16:00 as epoch seconds; no funding change
    )
    rows = feeder.load_replay(path)
    assert [r.timestamp - rows[0].timestamp for r in rows] == [0, 28_800, 57_600]
    start = chain.pending_timestamp
    seen = []
    steps = feeder.replay(dep, chain, admin, rows, interval="8h", on_step=seen.append)
    assert steps == seen and [s.waited_seconds for s in steps] == [0, 28_800, 28_800]
    assert chain.blocks.head.timestamp - start >= 57_600
    assert dep.price_feed.latestAnswer() == 2_950 * E8
    assert dep.perp_market.funding_rate() == rate_per_second_e18(Decimal("0.0002"), 28_800)
    assert dep.spot_pool.price_e8() == pytest.approx(2_950 * E8, rel=1e-4)  # arbitraged each step


def test_replay__live_network_waits_instead_of_warping(dep, chain, admin, tmp_path, monkeypatch):
    monkeypatch.setattr(feeder, "is_local", lambda chain: False)
    path = write_csv(tmp_path, "time,close\n1700000000,3000\n1700003600,3010\n")
    waits = []
    feeder.replay(
        dep, chain, admin, feeder.load_replay(path), speed=Decimal(60), sleep=waits.append, do_arb=False
    )
    assert waits == [60.0]


def test_replay__real_binance_8h_bars(dep, chain, admin, data_dir):
    path = data_dir / "prices" / "binance_spot_ETHUSDT_8h_2020-2023_DERIVED_from_4h.csv"
    rows = feeder.load_replay(path, price_column="close", limit=3)
    assert [r.price_usd for r in rows] == [Decimal("130.24"), Decimal("132.08"), Decimal("130.77")]
    # ETH at $130 is 96 % below the venue's $3,000 seed: arbitraging the pool that far takes
    # a thousand faucet calls, so this replay leaves the pool alone.
    feeder.replay(dep, chain, admin, rows, do_arb=False)
    assert dep.price_feed.latestAnswer() == 13_077_000_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("when,usd\n1,2\n", "needs a time column"),
        ("timestamp,price\n", "has no rows"),
        ("timestamp,price\n2024-01-01,abc\n", "line 2: price 'abc' is not a number"),
        ("timestamp,price\nyesterday,3000\n", "line 2: 'yesterday' is not a timestamp"),
        ("timestamp,price\n2024-01-01,-3\n", "line 2: price must be positive"),
        ("timestamp,price\n2024-01-02,3000\n2024-01-01,3001\n", "line 3: time 2024-01-01 does not follow"),
        ("timestamp,price,funding_rate\n2024-01-01,3000,x\n", "line 2: funding rate 'x' is not a number"),
    ],
)
def test_replay__bad_files_name_the_line(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        feeder.load_replay(write_csv(tmp_path, text))


def test_replay__unknown_column(tmp_path):
    path = write_csv(tmp_path, "timestamp,close\n2024-01-01,1\n")
    with pytest.raises(UserError, match="no column 'mark' for the price"):
        feeder.load_replay(path, price_column="mark")


def test_replay__funding_beyond_the_cap_is_refused_before_any_push(dep, chain, admin, tmp_path):
    path = write_csv(tmp_path, "timestamp,price,funding_rate\n2024-01-01,3000,0\n2024-01-02,3100,0.5\n")
    with pytest.raises(UserError, match="beyond the market's cap"):
        feeder.replay(dep, chain, admin, feeder.load_replay(path), interval="8h")
    assert dep.price_feed.latestAnswer() == 3_000 * E8


# ----------------------------------------------------------------------------- mirror
# Readings come from keeper.data.hyperliquid (tested on its own in tests/keeper); these
# tests feed it the project's recorded-shape fixture: ETH oracle 3600.5, funding -0.0000031/h.


def reading(body):
    return lambda: parse_meta_and_asset_ctxs(body, "ETH", datetime.now(UTC))


def no_sleep(seconds):
    pass


def test_mirror__pushes_price_and_funding_then_only_changes(dep, chain, admin):
    polls = feeder.mirror(
        dep, chain, admin, feeder.recorded_reading(HL_FIXTURE, "ETH"), polls=2, sleep=no_sleep
    )
    first, second = polls
    assert first.pushed_price and first.set_funding
    assert (first.price_usd, first.funding_rate_per_hour) == (Decimal("3600.5"), Decimal("-0.0000031"))
    assert not second.pushed_price and not second.set_funding  # same answer, fresh push: nothing to do
    assert dep.price_feed.latestAnswer() == 360_050_000_000
    assert dep.perp_market.funding_rate() == rate_per_second_e18(Decimal("-0.0000031"), 3_600) < 0
    assert dep.spot_pool.price_e8() == pytest.approx(360_050_000_000, rel=1e-4)


def test_mirror__heartbeat_and_deviation(dep, chain, admin):
    answers = iter(["3000.5", "3000.5", "3010"])
    body = json.loads(HL_FIXTURE.read_text())

    def read():
        body[1][1]["oraclePx"] = next(answers)
        return reading(body)()

    polls = feeder.mirror(
        dep,
        chain,
        admin,
        read,
        polls=3,
        deviation_bps=10,
        heartbeat_seconds=3_600,
        sleep=lambda s: chain.mine(deltatime=3_600),
        do_arb=False,
    )
    # 3000 -> 3000.5 is under 10 bps: the first poll skips it; an hour later the heartbeat
    # pushes it; then 3010 moved >10 bps and is pushed at once.
    assert [p.pushed_price for p in polls] == [False, True, True]


def test_mirror__survives_a_bad_poll_and_stops_after_too_many(dep, chain, admin, tmp_path):
    good = json.loads(HL_FIXTURE.read_text())
    answers = iter([[], good])
    polls = feeder.mirror(dep, chain, admin, lambda: reading(next(answers))(), polls=2, sleep=no_sleep)
    assert "metaAndAssetCtxs must be [meta, assetCtxs]" in (polls[0].error or "")
    assert polls[1].pushed_price
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(UserError, match=r"mirror stopped after 3 failed polls in a row: hyperliquid: "):
        feeder.mirror(dep, chain, admin, feeder.recorded_reading(bad, "ETH"), max_failures=3, sleep=no_sleep)


def test_mirror__a_single_failed_poll_is_an_error(dep, chain, admin, tmp_path):
    with pytest.raises(UserError, match=r"mirror: no poll succeeded \(recorded: cannot read .*missing.json"):
        feeder.mirror(dep, chain, admin, feeder.recorded_reading(tmp_path / "missing.json", "ETH"), polls=1)


def test_mirror__a_host_that_does_not_resolve_stops_at_once(dep, chain, admin):
    # item 9 of the first-run issue: no network used to mean 4 min 22 s of retries on DNS.
    # `.invalid` never resolves (RFC 2606); the real urllib transport, no sleep before the error.
    slept: list[float] = []
    read = feeder.hyperliquid_reading("ETH", url="http://basis-test.invalid/info")
    with pytest.raises(UserError, match=r"mirror: .*host name 'basis-test.invalid' does not resolve"):
        feeder.mirror(dep, chain, admin, read, sleep=slept.append)
    assert slept == []


def test_mirror__an_answer_without_an_oracle_price_is_a_failed_poll(dep, chain, admin):
    body = json.loads(HL_FIXTURE.read_text())
    body[1][1]["oraclePx"] = None
    with pytest.raises(UserError, match="ETH: no oracle price in the answer"):
        feeder.mirror(dep, chain, admin, reading(body), polls=1)


def test_mirror__needs_both_roles(dep, chain, alice):
    with pytest.raises(UserError, match="lacks FEEDER_ROLE"):
        feeder.mirror(dep, chain, alice, feeder.recorded_reading(HL_FIXTURE, "ETH"), polls=1)


# ----------------------------------------------------------------------------- the asset feed


def test_asset_price__a_de_peg_drill_and_back(dep, admin, alice):
    push = feeder.push_asset_price(dep, admin, Decimal("0.88"))
    assert (push.old_e8, push.new_e8) == (E8, 88_000_000) and dep.asset_feed.latestAnswer() == 88_000_000
    assert dep.vault.maxDeposit(alice) == 0  # the vault's de-peg guard closed entries
    feeder.push_asset_price(dep, admin, Decimal(1))
    assert dep.vault.maxDeposit(alice) > 0
    with pytest.raises(UserError, match="cannot push asset prices: it lacks FEEDER_ROLE on 0x"):
        feeder.push_asset_price(dep, alice, Decimal(1))


def test_replay__keeps_the_asset_feed_fresh(dep, chain, admin, tmp_path):
    """Four days of 8h rows: the vault's 25 h asset-feed limit would lapse without re-pushes."""
    rows = "".join(f"{1_704_067_200 + i * 28_800},{3_000 + i}\n" for i in range(12))
    steps = feeder.replay(
        dep, chain, admin, feeder.load_replay(write_csv(tmp_path, "timestamp,price\n" + rows))
    )
    assert sum(s.asset_pushed for s in steps) == 11  # every row after the first: 8 h >= the 4 h heartbeat
    assert feeder.asset_feed_age(dep, chain) < feeder.ASSET_HEARTBEAT_SECONDS
    assert dep.vault.maxDeposit(admin) > 0


def test_mirror__refreshes_the_asset_feed_on_its_heartbeat(dep, chain, admin):
    polls = feeder.mirror(
        dep,
        chain,
        admin,
        feeder.recorded_reading(HL_FIXTURE, "ETH"),
        polls=3,
        sleep=lambda s: chain.mine(deltatime=2 * 3_600),
        do_arb=False,
    )
    # fresh at deploy; 2 h later still inside the 4 h heartbeat; 4 h later re-pushed at 1 USD
    assert [p.pushed_asset for p in polls] == [False, False, True]
    assert dep.asset_feed.latestAnswer() == E8
