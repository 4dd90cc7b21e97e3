"""Replay honesty (tracker issue 12, item 4): gaps stop the replay, a liquidation makes
the run INVALID, margin is checked at the bars' extremes, the keeper steps hourly, every
report carries the never-park hedge, the strategy's knobs reach the replay, and funding
paid while negative is no cost line. Model mode only: pure Python, each test well under
a second or two."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner

from keeper.bot.strategy import Settings
from keeper.cli.keeper import cli
from keeper.cli.replay import strategy_settings
from keeper.data.files import FundingPrint, PricePoint
from keeper.replay.driver import (
    STEP_SECONDS,
    GapError,
    ReplayConfig,
    find_gaps,
    history_steps,
    passive_settings,
)
from keeper.replay.exact import run_model
from keeper.replay.report import build_report, table
from tests.fixtures.data import data_file
from tests.units import E8

HOUR = 3_600
START = 1_700_006_400  # 2023-11-15 00:00 UTC


def _prints(days: int, rate: float = 0.0001, skip: range = range(0)) -> list[FundingPrint]:
    return [
        FundingPrint(START + (i + 1) * 8 * HOUR, rate, 8 * HOUR) for i in range(days * 3) if i not in skip
    ]


def _csv(path: Path, days: int, skip: range = range(0), rate: float = 0.0001) -> Path:
    """A Binance-style funding CSV (UTC+3 timestamps), 8-hourly, prints in `skip` left out."""
    from datetime import UTC, datetime

    rows = ["Symbol,Date,Funding Rate"]
    for p in _prints(days, rate, skip):
        when = datetime.fromtimestamp(p.time + 3 * HOUR, UTC).strftime("%Y-%m-%d %H:%M:%S.000")
        rows.append(f"ETH-USDT,{when},{p.rate}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _replay(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, dict | None]:
    """`basis-keeper replay --mode model ...`; (exit code, output, the JSON report)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        result = CliRunner().invoke(cli, ["replay", "--mode", "model", "--json", str(out), *args], env=env)
        report = json.loads(out.read_text()) if out.exists() else None
    return result.exit_code, result.output, report


# ----------------------------------------------------------------------------- gaps


def test_gap__longer_than_three_intervals_stops_with_one_line(tmp_path: Path) -> None:
    funding = _csv(tmp_path / "binance_eth_funding.csv", 10, skip=range(12, 18))  # 7 intervals
    code, output, report = _replay("--funding", str(funding))
    assert code == 1 and report is None
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: binance_eth_funding.csv: a 56 h gap")
    assert "2023-11-19 00:00 -> 2023-11-21 08:00 UTC" in lines[0] and "--allow-gaps" in lines[0]


def test_gap__allowed_is_replayed_through_and_listed(tmp_path: Path) -> None:
    funding = _csv(tmp_path / "binance_eth_funding.csv", 10, skip=range(12, 18))
    code, output, report = _replay("--funding", str(funding), "--allow-gaps")
    assert code == 0, output
    assert report is not None
    assert report["gaps"] == [{"from": "2023-11-19 00:00", "to": "2023-11-21 08:00", "hours": 56.0}]
    assert "funding gaps replayed through" in output
    # stepped hourly through the hole at the last rate: no step longer than an hour
    assert report["window"]["steps"] == 10 * 24
    # a gap of up to 3 intervals is listed but does not stop the replay
    short = _csv(tmp_path / "binance_eth_funding.csv", 10, skip=range(12, 14))
    code, _, report = _replay("--funding", str(short))
    assert code == 0 and report is not None and report["gaps"][0]["hours"] == 24.0


def test_gap__gate_btc_december_2020(tmp_path: Path) -> None:
    funding = data_file("funding/gate_btc_funding.csv")
    prices = data_file("prices/binance_spot_BTCUSDT_8h_2020-2023_DERIVED_from_4h.csv")
    window = ["--from", "2020-11-28", "--to", "2021-01-03"]
    code, output, _ = _replay("--funding", str(funding), "--prices", str(prices), *window)
    assert code == 1
    assert output.startswith("error: gate_btc_funding.csv: a 752 h gap in the funding prints, ")
    assert "2020-11-30 16:00 -> 2021-01-01 00:00 UTC" in output
    code, output, report = _replay(
        "--funding", str(funding), "--prices", str(prices), *window, "--allow-gaps"
    )
    assert code == 0, output
    assert report is not None
    assert report["gaps"] == [{"from": "2020-11-30 16:00", "to": "2021-01-01 00:00", "hours": 752.0}]
    # stepped hourly on the real prices through the hole: no one-step jump, no liquidation
    assert report["liquidations"] == [] and report["verdict"] == "OK"


def test_gap__python_api_refuses_unless_allowed() -> None:
    prints = _prints(10, skip=range(12, 18))
    assert [g.hours for g in find_gaps(prints)] == [56.0]
    with pytest.raises(GapError, match="56 h gap"):
        run_model(prints, None, passive=False)
    assert run_model(prints, None, allow_gaps=True, passive=False).gaps == find_gaps(prints)


# ----------------------------------------------------------------------------- liquidation


def test_liquidation__verdict_invalid_and_strict_exits_non_zero() -> None:
    code, output, report = _replay("--scenario", "liquidation")
    assert code == 0, output
    assert report is not None and report["verdict"] == "INVALID: liquidated"
    assert [x["when"] for x in report["liquidations"]] == ["2023-11-17 02:00"]
    assert "-> INVALID: liquidated (1 liquidation(s)" in output
    code, output, _ = _replay("--scenario", "liquidation", "--strict")
    assert code == 3 and "error: replay verdict INVALID: liquidated (--strict)" in output
    code, output, report = _replay("--scenario", "crash", "--strict")
    assert code == 0 and report is not None and report["verdict"] == "OK"


# ----------------------------------------------------------------------------- intrabar


def _bars(days: int, spike: dict[int, float]) -> list[PricePoint]:
    """8h bars at 2,000 with a tiny wobble; bar i's high is `spike[i]` x the price."""
    points = []
    for i in range(days * 3 + 1):
        price = 2_000.0 * (1 + 0.001 * (i % 3))
        points.append(PricePoint(START + i * 8 * HOUR, price, price * spike.get(i, 1.002), price * 0.998))
    return points


def test_intrabar__margin_checked_at_the_bars_high() -> None:
    prints, bars = _prints(6), _bars(6, {12: 1.25})  # +25 % inside one bar on day 5
    closes = [PricePoint(p.time, p.price) for p in bars]
    ranged = build_report(run_model(prints, bars, passive=False))
    close_only = build_report(run_model(prints, closes, passive=False))
    assert close_only["intrabar_checks"] == 0
    assert ranged["intrabar_checks"] > 0 and ranged["liquidations"] == []
    low = ranged["min_margin_ratio_bps"]
    assert low == ranged["min_margin_ratio_intrabar_bps"] < close_only["min_margin_ratio_bps"] - 1_000
    assert ranged["min_margin_ratio_at"].startswith("2023-11-19 0")  # inside the spiked bar
    assert "at the bars' adverse extremes" in table(ranged)


def test_intrabar__the_venue_liquidates_at_the_extreme_then_the_close_goes_on() -> None:
    prints, bars = _prints(6), _bars(6, {12: 1.7})  # +70 %: past a 2x short's bankruptcy
    result = run_model(prints, bars, passive=False)
    assert len(result.liquidations) == 1
    liq = result.liquidations[0]
    # the hedge as it stood when the bar opened meets the high, at the keeper's next tick
    assert liq.time == START + 12 * 8 * HOUR + HOUR and liq.size > 0
    assert min(r for _, r in result.extreme_ratios) == 0  # equity gone at the high
    report = build_report(result)
    assert report["verdict"] == "INVALID: liquidated" and report["reconciliation"]["ok"]
    # without the bars' range the same closes never liquidate
    closes = [PricePoint(p.time, p.price) for p in bars]
    assert run_model(prints, closes, passive=False).liquidations == []


# ----------------------------------------------------------------------------- hourly steps


def test_hourly_steps__between_8h_prints_interpolated_and_funded_by_the_print() -> None:
    prints = _prints(2)
    points = [PricePoint(START + i * 8 * HOUR, 2_000.0 + 80.0 * i) for i in range(7)]
    steps = history_steps(prints, points, 3_000.0)
    assert len(steps) == 6 * 8
    assert all(b.time - a.time == STEP_SECONDS for a, b in pairwise(steps))
    assert steps[4].price_e8 == 2_040 * E8  # halfway between the 2,000 and 2,080 opens
    assert steps[8].price_e8 == 2_080 * E8
    assert len({s.rate for s in steps[:8]}) == 1 and sum(s.interval for s in steps[:8]) == 8 * HOUR
    assert sum(s.capped for s in steps) == 0
    result = run_model(prints, points, passive=False)
    lev = float(result.config.settings.target_leverage)
    assert result.carry_simple == pytest.approx(sum(p.rate for p in prints) * lev / (lev + 1), rel=1e-9)
    assert [s.time for s in result.steps] == [s.time for s in steps]


# ----------------------------------------------------------------------------- passive


def _flat_then_negative() -> tuple[list[FundingPrint], list[PricePoint]]:
    prints = [
        FundingPrint(START + (i + 1) * 8 * HOUR, 0.000_15 if i < 18 else -0.001, 8 * HOUR) for i in range(45)
    ]
    prices = [PricePoint(START + i * 8 * HOUR, 2_000.0 * (1 + 0.001 * (i % 5))) for i in range(46)]
    return prints, prices


def test_passive__in_every_report_and_excess_is_net_minus_passive() -> None:
    prints, prices = _flat_then_negative()
    result = run_model(prints, prices)
    report = build_report(result)
    assert result.passive is not None and result.passive.mode == "model"
    assert report["passive_net_apy"] is not None
    assert report["excess_vs_passive"] == pytest.approx(report["net_apy"] - report["passive_net_apy"])
    assert 0 < report["mean_short_to_nav"] < report["passive"]["mean_short_to_nav"] < 0.7
    assert report["passive"]["time_parked_fraction"] < report["time_parked_fraction"]
    # parking through nine days of -0.1 %/8h beats the hedge that stays
    assert report["excess_vs_passive"] > 0
    # a strategy that never parks is its own passive: excess 0, no second run
    config = ReplayConfig(settings=passive_settings(Settings()))
    own = build_report(run_model(prints, prices, config))
    assert own["passive"]["note"].endswith("it is its own passive")
    assert own["excess_vs_passive"] == 0
    assert own["net_apy"] == pytest.approx(report["passive_net_apy"])


def test_reconciliation__negative_funding_is_inside_funding_not_a_cost() -> None:
    prints, prices = _flat_then_negative()
    config = ReplayConfig(settings=passive_settings(Settings()))  # stays hedged: pays funding
    report = build_report(run_model(prints, prices, config))
    assert report["funding"]["paid"] > 0 and report["funding"]["net"] < report["funding"]["received"]
    assert not any("funding" in name for name in report["costs"])
    assert report["reconciliation"]["ok"], report["reconciliation"]
    lines = sum(v for k, v in report["costs"].items() if k != "gas_usd_paid_by_keeper")
    explained = report["funding"]["net"] + report["hedge_pnl"]["net"] + report["basis_pnl"] - lines
    change = (report["share_price"]["end"] / report["share_price"]["start"] - 1) * report["deposit"]
    assert explained == pytest.approx(change, abs=report["deposit"] * 1e-4)  # within 1 bp
    assert "of which paid while negative" in table(report)


# ----------------------------------------------------------------------------- knobs


def test_knobs__env_and_set_reach_the_replay(tmp_path: Path) -> None:
    funding = _csv(tmp_path / "binance_eth_funding.csv", 6)
    _, _, base = _replay("--funding", str(funding))
    _, _, env = _replay("--funding", str(funding), env={"BASIS_KEEPER_STRATEGY__TARGET_LEVERAGE": "3"})
    code, output, flagged = _replay("--funding", str(funding), "--set", "target_leverage=3")
    assert code == 0, output
    assert base is not None and env is not None and flagged is not None
    assert env["mean_short_to_nav"] == pytest.approx(flagged["mean_short_to_nav"])
    assert flagged["mean_short_to_nav"] > base["mean_short_to_nav"] + 0.05  # 3x: 3/4 of NAV short
    # --set wins over the environment
    _, _, both = _replay(
        "--funding",
        str(funding),
        "--set",
        "target_leverage=2",
        env={"BASIS_KEEPER_STRATEGY__TARGET_LEVERAGE": "3"},
    )
    assert both is not None and both["mean_short_to_nav"] == pytest.approx(base["mean_short_to_nav"])


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--set", "leverage=3"], None, "error: --set leverage: unknown strategy setting; valid names: "),
        (["--set", "target_leverage"], None, "error: --set 'target_leverage': expected name=value"),
        (["--set", "target_leverage=abc"], None, "error: --set target_leverage: "),
        ([], {"BASIS_KEEPER_STRATEGY__NOPE": "1"}, "error: BASIS_KEEPER_STRATEGY__NOPE: unknown strategy"),
        (["--leverage", "5"], None, "error: --leverage: the target margin ratio 2000 bps"),
        (["--spot-fee-bps", "101"], None, "error: --spot-fee-bps: 101 outside 0..100"),
    ],
)
def test_knobs__bad_input_is_one_error_line(
    tmp_path: Path, args: list[str], env: dict[str, str] | None, message: str
) -> None:
    funding = _csv(tmp_path / "binance_eth_funding.csv", 2)
    code, output, _ = _replay("--funding", str(funding), *args, env=env)
    assert code == 1
    assert len(output.strip().splitlines()) == 1 and output.startswith(message), output
    if "unknown" in message:
        assert "target_leverage, funding_window_hours" in output


def test_knobs__venue_file_and_flags_change_the_costs(tmp_path: Path) -> None:
    funding = _csv(tmp_path / "binance_eth_funding.csv", 4, rate=0.0003)  # pays the 30 bps pool
    venue = tmp_path / "venue.yaml"
    venue.write_text("spot_fee_bps: 30\ntaker_fee_ppm: 900\ntarget_leverage: 1.5\n")
    _, _, base = _replay("--funding", str(funding))
    code, output, costly = _replay("--funding", str(funding), "--venue", str(venue))
    assert code == 0, output
    assert base is not None and costly is not None
    assert costly["costs"]["spot_pool_fees"] > 4 * base["costs"]["spot_pool_fees"]
    assert costly["costs"]["perp_taker_fees"] > 1.5 * base["costs"]["perp_taker_fees"]
    assert costly["mean_short_to_nav"] < base["mean_short_to_nav"] - 0.05  # 1.5x: 3/5 of NAV
    # a flag wins over the file
    _, _, flagged = _replay("--funding", str(funding), "--venue", str(venue), "--spot-fee-bps", "5")
    assert flagged is not None
    assert flagged["costs"]["spot_pool_fees"] < costly["costs"]["spot_pool_fees"] / 4
    venue.write_text("spot_fee: 30\n")
    code, output, _ = _replay("--funding", str(funding), "--venue", str(venue))
    assert code == 1 and "unknown venue parameter(s) ['spot_fee']" in output


def test_knobs__settings_read_as_the_keeper_reads_them() -> None:
    env = {"BASIS_KEEPER_STRATEGY__PARK_RATE_PER_HOUR": "-0.00001", "BASIS_KEEPER_RPC_URL": "ignored"}
    s = strategy_settings(["max_basis_bps=20"], leverage=Decimal("1.5"), environ=env)
    assert s.park_rate_per_hour == Decimal("-0.00001") and s.max_basis_bps == 20
    assert s.target_leverage == Decimal("1.5")
    assert replace(ReplayConfig(), settings=s).settings is s


def test_model_state__derived_values_it_fills_in_are_the_states_own() -> None:
    """`BasisModel.state` hands the state the values its properties would compute (the
    replay reads one a step); they must be what a plainly built state computes, at every
    step of a run that enters, moves and parks."""
    from keeper.core.state import VaultState
    from keeper.replay.exact import ModelBackend

    prints, prices = _flat_then_negative()
    backend = ModelBackend(ReplayConfig(), START, 2_000 * E8)
    signs = set()
    for step in history_steps(prints, prices, 3_000.0):
        backend.advance(step)
        backend.tick()
        backend.observe()
        state = backend.world.state()
        plain = VaultState(**{name: getattr(state, name) for name in VaultState.__dataclass_fields__})
        derived = [name for name in state.__dict__ if name not in VaultState.__dataclass_fields__]
        assert len(derived) == 14, derived  # perp_mark_price_e8 too
        for name in derived:
            assert getattr(state, name) == getattr(plain, name), (step.time, name)
        signs.add((state.pool_dislocation_bps > 0, state.basis_bps > 0, state.short_size > 0))
    assert len(signs) >= 3  # both signs of the pool's offset, hedged and parked
