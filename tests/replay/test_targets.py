"""`python -m keeper.replay.targets` (tracker issue 12, item 5): one row per history, the
default against its report's never-park hedge, and the verdicts on the issue's targets.
Model mode on small files (the whole table is `make bench`'s)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from keeper.replay.targets import Row, main, run_file, verdicts

HOUR = 3_600
START = 1_700_006_400  # 2023-11-15 00:00 UTC


def _binance_csv(path: Path, rates: list[float]) -> Path:
    """A Binance-style funding CSV (UTC+3 timestamps), 8-hourly."""
    rows = ["Symbol,Date,Funding Rate"]
    for i, rate in enumerate(rates):
        when = datetime.fromtimestamp(START + (i + 1) * 8 * HOUR + 3 * HOUR, UTC)
        rows.append(f"ETH-USDT,{when:%Y-%m-%d %H:%M:%S}.000,{rate}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _row(name: str, default: float, passive: float) -> Row:
    return Row(name, "", "", "", 0, default, passive, 0.0, 0, 0.0)


def test_run_file__a_long_negative_spell_parks_and_beats_the_passive_hedge(tmp_path: Path) -> None:
    # three weeks at 0.02 %/8h, three weeks at -0.1 %/8h, one week back at 0.02 %
    rates = [0.0002] * 63 + [-0.001] * 63 + [0.0002] * 21
    funding = _binance_csv(tmp_path / "bybit_eth_funding.csv", rates)
    row = run_file(str(funding))
    assert row.parks >= 1 and row.parked_share > 0.2
    assert row.excess_points > 0
    assert row.steps == len(rates) * 8 and row.prices.startswith("constant price")
    flat = run_file(str(_binance_csv(tmp_path / "mexc_eth_funding.csv", [0.0002] * 147)), premium="none")
    assert flat.parks == 0 and flat.excess_points == 0  # nothing to park: it is its own passive hedge


def test_verdicts__the_issue_targets() -> None:
    others = [_row(f"v{i}_btc_funding.csv", 0.10, 0.10) for i in range(8)]
    binance = [_row("binance_eth_funding.csv", 0.10, 0.10), _row("binance_btc_funding.csv", 0.10, 0.10)]
    assert all(met for _, met, _ in verdicts(others + binance))
    # two of ten below 0 is still 80 %; a third is not; one below -0.3 points fails the floor
    worse = [_row("a_btc_funding.csv", 0.10, 0.1001), _row("b_btc_funding.csv", 0.10, 0.1001)]
    got = verdicts(others + worse + binance)
    assert [met for _, met, _ in got] == [True, True, True]
    got = verdicts(others[:7] + worse + [_row("c_btc_funding.csv", 0.10, 0.1001)] + binance)
    assert [met for _, met, _ in got] == [False, True, True]
    got = verdicts([*others, _row("d_btc_funding.csv", 0.10, 0.104), *binance])
    assert [met for _, met, _ in got] == [True, False, True]
    got = verdicts([*others, _row("binance_eth_funding.csv", 0.10, 0.1001), binance[1]])
    assert [met for _, met, _ in got] == [True, True, False]


def test_main__no_funding_files_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("BASIS_DATA_DIR", str(tmp_path))
    assert main([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no funding files under" in err
