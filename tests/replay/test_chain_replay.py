"""Chain mode against model mode, the stress scenarios in both, and the CLI and demo.

Each chain run starts its own anvil, deploys with the deploy script's code and runs the
production keeper tick per step, so these are the slowest replay tests (seconds each).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from keeper.cli.keeper import cli
from keeper.cli.replay import _moment, load_inputs
from keeper.data.files import FundingPrint, PricePoint, synthetic_history
from keeper.data.premium import modelled_premium
from keeper.replay.anvil import run_chain_steps
from keeper.replay.driver import ReplayConfig, ReplayResult, end_price, history_steps, with_premium
from keeper.replay.exact import run_steps
from keeper.replay.report import build_report
from keeper.replay.scenarios import SCENARIOS
from tests.fixtures.data import data_file

# starts its own anvil: a chain test though it asks for none of ape's fixtures
pytestmark = pytest.mark.chain

BP = 1e-4


def _agree(model: ReplayResult, chain: ReplayResult) -> None:
    """The modes' agreement: final share price within 1 bp (the issue's bar), and in fact
    the same actions and the same NAV path."""
    assert abs(chain.share_price_end / model.share_price_end - 1) < BP
    assert [s.action for s in chain.steps] == [s.action for s in model.steps]
    assert [s.nav for s in chain.steps] == [s.nav for s in model.steps]
    assert chain.net_nav_end == model.net_nav_end
    assert chain.liquidations == model.liquidations
    assert chain.extreme_ratios == model.extreme_ratios
    assert [(s.short_size, s.booked_short, s.unhedged) for s in chain.steps] == [
        (s.short_size, s.booked_short, s.unhedged) for s in model.steps
    ]
    for c, m in zip(chain.steps, model.steps, strict=True):
        assert (c.probe is None) == (m.probe is None)
        if c.probe is not None and m.probe is not None:
            assert (c.probe.deposit_refused is None) == (m.probe.deposit_refused is None)
            assert (c.probe.redeem_refused is None) == (m.probe.redeem_refused is None)
            if c.probe.round_trip_bps is not None and m.probe.round_trip_bps is not None:
                assert abs(c.probe.round_trip_bps - m.probe.round_trip_bps) < 1e-6


def test_modes_agree__15_synthetic_days_with_fees_and_three_depositors() -> None:
    # 8h prints stepped hourly: 360 steps (45 days were 135 8h steps before hourly stepping)
    prints, prices = synthetic_history(seed=37, days=15)  # an entry, a margin top-up and a release
    config = ReplayConfig(depositors=3, management_fee_bps=200, performance_fee_bps=1_000)
    # with the premium the prints imply: the feeder moves the mark every print
    steps = with_premium(history_steps(prints, prices, config.constant_price), modelled_premium(prints).at)
    end = end_price(prints, prices, config)
    model = run_steps(steps, config, end_price_e8=end)
    chain = run_chain_steps(steps, config, end_price_e8=end)
    _agree(model, chain)
    assert chain.liquidations == [] and chain.max_unhedged_hours == 0
    assert sum(model.rebalances.values()) >= 2
    # costs are read from receipts on chain and from the models: the same to the wei
    # (gas aside: the chain measures it, the model prices it from the bench table)
    names = (
        "funding",
        "spot_fees",
        "spot_impact",
        "perp_fees",
        "perp_impact",
        "spot_pnl",
        "perp_pnl",
        "basis_pnl",
    )
    for name in names:
        assert getattr(chain.costs, name) == getattr(model.costs, name), name
    assert chain.costs.basis_pnl != 0 and chain.costs.gas_units > 0
    assert [(t.kind, t.swaps, t.fills) for t in chain.trades] == [
        (t.kind, t.swaps, t.fills) for t in model.trades
    ]


def test_modes_agree__binance_eth_june_2022() -> None:
    """14 days of real history through the 2022 deleveraging (ETH -38 %, funding turning
    negative), stepped hourly with the bars' extremes (336 steps): an entry, then margin
    released three times as the price falls; the spell is too short to pay for a park
    (the park rule; the whole month, 744 steps, took twice the time)."""
    funding = data_file("funding/binance_eth_funding.csv")
    prices = data_file("prices/binance_spot_ETHUSDT_8h_2020-2023_DERIVED_from_4h.csv")
    config = ReplayConfig(depositors=2)
    inputs = load_inputs(
        str(funding), str(prices), config, _moment("2022-06-08", "--from"), _moment("2022-06-22", "--to")
    )
    kwargs = {"end_price_e8": inputs.end_price_e8}
    model = run_steps(inputs.steps, config, **kwargs)
    chain = run_chain_steps(inputs.steps, config, **kwargs)
    assert chain.end - chain.start >= 14 * 86_400
    assert model.rebalances == {"enter": 1, "margin_fat": 3} and len(model.extreme_ratios) > 30
    _agree(model, chain)


def test_modes_agree__binance_eth_2023_with_the_recorded_premium() -> None:
    """Two weeks of 2023 with the perp's recorded mark (Binance USD-M 8h) against spot:
    the feeder sets the measured premium at each 8h mark, the vault values the short at
    the mark; an
    entry and a margin top-up (336 hourly steps); the same books to the wei."""
    funding = data_file("funding/binance_eth_funding.csv")
    prices = data_file("prices/binance_spot_ETHUSDT_8h_2020-2023_DERIVED_from_4h.csv")
    marks = data_file("prices/binance_usdm_perp_ETHUSDT_mark_8h_2023.csv")
    config = ReplayConfig(depositors=2)
    start, end = _moment("2023-01-01", "--from"), _moment("2023-01-15", "--to")
    inputs = load_inputs(str(funding), str(prices), config, start, end, premium=str(marks))
    kwargs = {"end_price_e8": inputs.end_price_e8, "premium": inputs.premium}
    model = run_steps(inputs.steps, config, passive=False, **kwargs)
    chain = run_chain_steps(inputs.steps, config, passive=False, **kwargs)
    assert model.rebalances == {"enter": 1, "margin_thin": 1}
    assert len({s.premium_e18 for s in inputs.steps}) == 42  # a new premium every 8h mark
    _agree(model, chain)
    for name in ("funding", "spot_pnl", "perp_pnl", "basis_pnl", "perp_fees", "perp_impact"):
        assert getattr(chain.costs, name) == getattr(model.costs, name), name
    assert build_report(chain)["reconciliation"]["ok"] and chain.costs.basis_pnl != 0


def test_modes_agree__liquidated_at_a_bars_high() -> None:
    """A bar whose high is +70 % (past a 2x short's bankruptcy) while its close is flat:
    the model liquidates at the extreme with the venue's own model, the chain pushes the
    extreme, liquidates and pushes the close back; the same books to the wei."""
    hour, start = 3_600, 1_700_006_400
    prints = [FundingPrint(start + (i + 1) * 8 * hour, 0.0001, 8 * hour) for i in range(15)]
    bars = []
    for i in range(16):
        price = 2_000.0 * (1 + 0.001 * (i % 3))
        bars.append(
            PricePoint(start + i * 8 * hour, price, price * (1.7 if i == 12 else 1.002), price * 0.998)
        )
    config = ReplayConfig()
    # and a premium that changes every print (so the extreme is valued at the mark)
    steps = with_premium(
        history_steps(prints, bars, config.constant_price), lambda t: 0.001 * (t // (8 * hour) % 3)
    )
    end = end_price(prints, bars, config)
    model = run_steps(steps, config, end_price_e8=end, passive=False)
    chain = run_chain_steps(steps, config, end_price_e8=end, passive=False)
    assert len(model.liquidations) == 1
    _agree(model, chain)
    for name in (
        "funding",
        "spot_pnl",
        "perp_pnl",
        "basis_pnl",
        "liquidation_loss",
        "spot_fees",
        "perp_fees",
    ):
        assert getattr(chain.costs, name) == getattr(model.costs, name), name


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario__verdicts_pass_in_both_modes(name: str) -> None:
    scenario, config = SCENARIOS[name], ReplayConfig()
    model = run_steps(scenario.steps(), config, scenario=name)
    chain = run_chain_steps(scenario.steps(), config, scenario=name)
    for mode, result in (("model", model), ("chain", chain)):
        failed = [v for v in scenario.judge(result, config) if not v.passed]
        assert not failed, (mode, failed)
    _agree(model, chain)


def test_scenario_verdicts__can_fail() -> None:
    """A judge that only ever said yes would prove nothing: an outage scenario judged on
    a run where the keeper never hedged fails the 'hedged' check."""
    scenario, config = SCENARIOS["keeper-outage"], ReplayConfig()
    from dataclasses import replace

    steps = [replace(s, keeper=False) for s in scenario.steps()]
    result = run_steps(steps, config, scenario="keeper-outage")
    failed = {v.check for v in scenario.judge(result, config) if not v.passed}
    assert "hedged before the stress" in failed


def test_cli__chain_scenario_writes_report_and_charts(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli,
        [
            "replay",
            "--scenario",
            "stale-oracle",
            "--json",
            str(out),
            "--charts",
            str(tmp_path / "charts"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["mode"] == "chain"
    assert report["scenario"]["passed"] is True
    assert "scenario stale-oracle" in result.output and "PASS" in result.output
    pngs = sorted((tmp_path / "charts").glob("*.png"))
    assert len(pngs) == 3 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give either --funding FILE or --scenario NAME"),
        (["--scenario", "crash", "--funding", "x.csv"], "give either --funding FILE or --scenario NAME"),
        (["--scenario", "crash", "--from", "2022-01-01"], "builds its own market"),
        (["--scenario", "crash", "--depositors", "0"], "--depositors must be at least 1"),
        (["--scenario", "meteor"], "unknown scenario 'meteor': one of crash, squeeze"),
        (["--scenario", "crash", "--deposit", "0"], "--deposit must be positive"),
        (["--scenario", "crash", "--deposit", "20000000"], "above the vault's deposit cap"),
    ],
)
def test_cli__bad_input_is_one_error_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["replay", "--mode", "model", *args])
    assert result.exit_code == 1
    assert message in result.output


def test_demo__synthetic_and_labelled_without_shared_data(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BASIS_DATA_DIR", str(tmp_path / "absent"))
    result = CliRunner().invoke(
        cli, ["demo", "--mode", "model", "--out", str(tmp_path / "demo"), "--to", "2023-02-01"]
    )
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    assert result.output.count("demo data:") == 1  # the data source is printed once
    report = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert report["data_label"].startswith("SYNTHETIC")
    assert len(list((tmp_path / "demo").glob("*.png"))) == 3
