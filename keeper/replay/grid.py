"""A sweep's grid: which model-mode replays to run, read from a YAML file and checked in
full before any runs.

A cell is one replay: a history (a funding file, its price series, a window) and one
combination of settings. The names a grid may set are every field of the strategy's
`Settings` (whatever the model declares: a setting added there is sweepable here with no
change), every `VenueParams` field, the replay CLI's aliases (`leverage` =
`target_leverage`, `perp_fee_ppm` = `taker_fee_ppm`, `perp_depth` = `depth_asset`) and the
replay's own `deposit`, `management_fee_bps`, `performance_fee_bps`, `gas_gwei`,
`eth_price_usd`. The YAML::

    data_dir: /path/to/shared/data     # relative history paths resolve here (optional)
    histories:
      - funding: funding/binance_eth_funding.csv   # a glob matches several files
        prices: prices/binance_spot_ETHUSDT_8h_2020-2023_DERIVED_from_4h.csv
        windows: [{from: 2022-01-01, to: 2023-01-01}]   # default: the whole file
        allow_gaps: false
        premium: model                 # the perp's premium: model (default), none, or a measured file
    base: {deposit: 1000000}           # every cell
    grid:                              # the cartesian product of these values
      park_rate_per_hour: [0, -0.00001]
      leverage: [2, 3]
    cells:                             # and/or a listed set
      - {funding_window_hours: 72}
    walk_forward: {train_years: 2, test_years: 1, objective: excess_vs_passive}

A cell's id is a hash of what decides its result: the history's path as the grid names
it, the window, and every setting that differs from its default after validation (so
`2` and `2.0` are one cell, and a setting added to `Settings` later leaves the ids of
existing cells alone). The same grid gives the same ids on any machine.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from keeper.bot.strategy import Settings
from keeper.core.errors import UserError
from keeper.core.rules import VenueParams
from keeper.ops.config import VenueDeployConfig
from keeper.replay.driver import ReplayConfig
from keeper.replay.inputs import _moment as moment
from keeper.replay.inputs import check_venue, read_yaml

ALIASES = {"leverage": "target_leverage", "perp_fee_ppm": "taker_fee_ppm", "perp_depth": "depth_asset"}
REPLAY_FIELDS = ("deposit", "management_fee_bps", "performance_fee_bps", "gas_gwei", "eth_price_usd")
# VenueParams fields that are names and descriptions, not costs: not sweepable
_VENUE_TEXT = {name for name, value in vars(VenueParams()).items() if isinstance(value, str)}
TOP_KEYS = ("data_dir", "histories", "base", "grid", "cells", "walk_forward")
HISTORY_KEYS = (
    "funding", "prices", "windows", "from", "to", "allow_gaps", "utc_shift_hours", "label", "premium"
)  # fmt: skip


def setting_names() -> list[str]:
    """Every name a grid may set, in the order the table's columns take."""
    venue = [f.name for f in fields(VenueParams) if f.name not in _VENUE_TEXT]
    return [*Settings.model_fields, *venue, *REPLAY_FIELDS]


def _canonical(name: str, value: Any) -> str:
    """One spelling per value: Decimals without exponent or trailing zeros."""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text if text != "-0" else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class History:
    """A funding file (absolute `funding`), its price series, and how to read it; `key`
    is the path as the grid names it (what cell ids use), `label` the table's name."""

    key: str
    funding: str
    prices: str | None
    label: str
    allow_gaps: bool = False
    utc_shift_hours: int | None = None
    premium: str = "model"  # as `replay --premium`: model, none, or a measured file (absolute)
    premium_key: str = "model"  # the premium as the grid names it (what cell ids use)
    windows: tuple[tuple[int | None, int | None], ...] = ((None, None),)
    prices_key: str | None = None  # the price file as the grid names it


@dataclass(frozen=True)
class Combo:
    """One combination of settings: the validated replay config and what the grid set."""

    config: ReplayConfig
    values: tuple[tuple[str, str], ...]  # every grid column's resolved value, canonical
    changed: tuple[tuple[str, str], ...]  # the settings that differ from their defaults

    @property
    def config_id(self) -> str:
        return _digest({"settings": dict(self.changed)})

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.changed) or "defaults"


@dataclass(frozen=True)
class Cell:
    """One replay of the sweep."""

    history: History
    start: int | None
    end: int | None
    combo: Combo

    @property
    def cell_id(self) -> str:
        payload: dict[str, Any] = {
            "history": self.history.key,
            "prices": self.history.prices_key,
            "from": _when(self.start),
            "to": _when(self.end),
            "settings": dict(self.combo.changed),
        }
        if self.history.utc_shift_hours is not None:  # only when set: the other ids stay as they were
            payload["utc_shift_hours"] = self.history.utc_shift_hours
        if self.history.premium_key != "model":  # likewise
            payload["premium"] = self.history.premium_key
        return _digest(payload)


@dataclass(frozen=True)
class WalkForward:
    train_years: int = 2
    test_years: int = 1
    step_years: int | None = None  # default: test_years
    objective: str = "excess_vs_passive"


@dataclass
class Grid:
    path: str
    histories: list[History]
    combos: list[Combo]
    default: Combo  # the base alone: what walk-forward compares with
    columns: list[str]  # the settings the grid sets, table order
    walk_forward: WalkForward = field(default_factory=WalkForward)
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[Cell]:
        """Every (history, window, combo), history-major (a worker's cache stays warm)."""
        return [
            Cell(h, start, end, combo)
            for h in self.histories
            for start, end in h.windows
            for combo in self.combos
        ]


def _digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _when(t: int | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M")


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _moment(value: Any, where: str) -> int | None:
    """A YAML date, datetime or string as UTC unix seconds (None stays None)."""
    return moment(None if value is None else _text(value), where)


def _name(raw: Any, where: str) -> str:
    name = ALIASES.get(str(raw).strip().lower(), str(raw).strip().lower())
    if name not in setting_names():
        raise UserError(
            f"{where}: unknown setting {raw!r}; valid names: {', '.join([*setting_names(), *ALIASES])}"
        )
    return name


def combo(values: Mapping[str, Any], where: str) -> Combo:
    """The validated replay config for these settings (names already canonical), or a
    `UserError` saying which value is wrong, as `basis-keeper replay` would refuse it."""
    strategy = {
        k: (str(v) if isinstance(v, float) else v) for k, v in values.items() if k in Settings.model_fields
    }
    venue = {k: v for k, v in values.items() if k in {f.name for f in fields(VenueParams)}}
    replay = {k: v for k, v in values.items() if k in REPLAY_FIELDS}
    try:
        settings = Settings.model_validate(strategy)
    except ValidationError as err:
        first = err.errors()[0]
        name = ".".join(str(x) for x in first["loc"]) or "settings"
        raise UserError(f"{where}: {name}: {str(first['msg']).removeprefix('Value error, ')}") from None
    try:
        VenueDeployConfig(params=venue)
    except ValidationError as err:
        raise UserError(f"{where}: {str(err.errors()[0]['msg']).removeprefix('Value error, ')}") from None
    params = replace(VenueParams(), **venue)
    check_venue(params, {k: f"{where}: {k}" for k in venue})
    try:
        config = ReplayConfig(
            venue=params,
            settings=settings,
            **{k: type(getattr(ReplayConfig, k))(v) for k, v in replay.items()},
        )
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: {err}") from None
    if config.deposit <= 0:
        raise UserError(f"{where}: deposit must be positive, got {config.deposit}")
    problems = settings.problems(config.rules)
    if problems:
        raise UserError(f"{where}: strategy settings: {'; '.join(problems)}")
    return resolve(config, list(values))


def resolve(config: ReplayConfig, columns: list[str]) -> Combo:
    """The config's values of `columns` and of every setting off its default."""
    defaults = ReplayConfig()
    changed = []
    for name in setting_names():
        got, default = _value(config, name), _value(defaults, name)
        if _canonical(name, got) != _canonical(name, default):
            changed.append((name, _canonical(name, got)))
    values = tuple((name, _canonical(name, _value(config, name))) for name in columns)
    return Combo(config, values, tuple(changed))


def _value(config: ReplayConfig, name: str) -> Any:
    if name in Settings.model_fields:
        return getattr(config.settings, name)
    if name in REPLAY_FIELDS:
        return getattr(config, name)
    return getattr(config.venue, name)


def _histories(data: dict[str, Any], path: str, root: Path) -> list[History]:
    raw = data.get("histories")
    if not raw:
        raise UserError(f"{path}: empty grid: no histories (a list of {{funding: FILE, ...}})")
    if not isinstance(raw, list):
        raise UserError(
            f"{path}: histories: expected a list of {{funding: FILE, prices: FILE, windows: ...}}"
        )
    out: list[History] = []
    for i, item in enumerate(raw):
        where = f"{path}: histories[{i}]"
        if isinstance(item, str):
            item = {"funding": item}
        if not isinstance(item, dict) or "funding" not in item:
            raise UserError(f"{where}: expected {{funding: FILE, ...}}")
        unknown = sorted(set(item) - set(HISTORY_KEYS))
        if unknown:
            raise UserError(f"{where}: unknown key(s) {unknown}; known: {', '.join(HISTORY_KEYS)}")
        pattern = str(item["funding"])
        found = sorted(glob.glob(str(root / pattern))) if glob.has_magic(pattern) else [str(root / pattern)]
        if not found:
            raise UserError(f"{where}: no file matches {pattern} (in {root})")
        prices = item.get("prices")
        prices_path = None if prices is None else str(root / str(prices))
        for file in [*found, *([prices_path] if prices_path else [])]:
            if not Path(file).is_file():
                raise UserError(f"{where}: {file}: no such file")
        windows = item.get("windows")
        if windows is None:
            windows = [{"from": item.get("from"), "to": item.get("to")}]
        elif "from" in item or "to" in item:
            raise UserError(f"{where}: give windows: or from:/to:, not both")
        spans: list[tuple[int | None, int | None]] = []
        for j, w in enumerate(windows):
            if isinstance(w, list | tuple) and len(w) == 2:
                w = {"from": w[0], "to": w[1]}
            if not isinstance(w, dict) or set(w) - {"from", "to"}:
                raise UserError(f"{where}: windows[{j}]: expected {{from: DATE, to: DATE}}")
            start, end = (
                _moment(w.get("from"), f"{where}: windows[{j}].from"),
                _moment(w.get("to"), f"{where}: windows[{j}].to"),
            )
            if start is not None and end is not None and start >= end:
                raise UserError(f"{where}: windows[{j}]: from {_when(start)} is not before to {_when(end)}")
            spans.append((start, end))
        shift = item.get("utc_shift_hours")
        premium = premium_key = str(item.get("premium", "model"))
        if premium not in ("model", "none"):
            premium = str(root / premium)
            if not Path(premium).is_file():
                raise UserError(f"{where}: premium: {premium}: no such file (model, none, or a file)")
        for file in found:
            relative = str(Path(file).relative_to(root)) if Path(file).is_relative_to(root) else file
            label = str(item.get("label") or Path(file).stem) if len(found) == 1 else Path(file).stem
            out.append(
                History(
                    key=relative,
                    funding=file,
                    prices=prices_path,
                    label=label,
                    allow_gaps=bool(item.get("allow_gaps", False)),
                    utc_shift_hours=None if shift is None else int(shift),
                    premium=premium,
                    premium_key=premium_key,
                    windows=tuple(dict.fromkeys(spans)),
                    prices_key=None if prices is None else str(prices),
                )
            )
    return out


def _walk_forward(raw: Any, path: str) -> WalkForward:
    if raw is None:
        return WalkForward()
    if not isinstance(raw, dict) or set(raw) - {"train_years", "test_years", "step_years", "objective"}:
        raise UserError(f"{path}: walk_forward: expected {{train_years, test_years, step_years, objective}}")
    try:
        step = raw.get("step_years")
        return WalkForward(
            train_years=int(raw.get("train_years", WalkForward.train_years)),
            test_years=int(raw.get("test_years", WalkForward.test_years)),
            step_years=None if step is None else int(step),
            objective=str(raw.get("objective", WalkForward.objective)),
        )
    except (TypeError, ValueError) as err:
        raise UserError(f"{path}: walk_forward: {err}") from None


def load_grid(path: str, data_root: Path) -> Grid:
    """The grid in `path`, every history checked to exist and every combination validated;
    relative history paths resolve against the file's `data_dir:` or `data_root`."""
    data = read_yaml(path, path, "histories: and grid: or cells:")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise UserError(f"{path}: unknown key(s) {unknown}; known: {', '.join(TOP_KEYS)}")
    root = Path(str(data["data_dir"])) if data.get("data_dir") else data_root
    if not root.is_absolute():
        root = (Path(path).parent / root).resolve()
    base_raw = data.get("base") or {}
    axes_raw = data.get("grid") or {}
    listed_raw = data.get("cells") or []
    for key, value, kind in (("base", base_raw, dict), ("grid", axes_raw, dict), ("cells", listed_raw, list)):
        if not isinstance(value, kind):
            raise UserError(f"{path}: {key}: expected a {'mapping' if kind is dict else 'list'}")
    base = {_name(k, f"{path}: base"): v for k, v in base_raw.items()}
    axes: dict[str, list[Any]] = {}
    for k, v in axes_raw.items():
        name = _name(k, f"{path}: grid")
        values = v if isinstance(v, list) else [v]
        if not values:
            raise UserError(f"{path}: grid: {k}: no values (an empty axis empties the whole product)")
        axes[name] = values
    listed: list[dict[str, Any]] = []
    for i, item in enumerate(listed_raw):
        if not isinstance(item, dict):
            raise UserError(f"{path}: cells[{i}]: expected a mapping of settings")
        listed.append({_name(k, f"{path}: cells[{i}]"): v for k, v in item.items()})
    if not axes and not listed:
        raise UserError(f"{path}: empty grid: no cells (give grid: {{name: [values]}} or cells: [{{...}}])")
    histories: list[History] = []
    notes: list[str] = []
    for h in _histories(data, path, root):
        if any(h.key == other.key for other in histories):
            notes.append(f"{h.key} is listed twice: its first entry is used")
        else:
            histories.append(h)
    columns = list(dict.fromkeys([*base, *axes, *(k for item in listed for k in item)]))
    columns.sort(key=setting_names().index)
    combos: list[Combo] = []
    product = (
        [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())] if axes else []
    )
    for n, chosen in enumerate([*product, *listed]):
        where = f"{path}: " + (f"grid cell {n}" if n < len(product) else f"cells[{n - len(product)}]")
        merged = {**base, **chosen}
        where += " (" + ", ".join(f"{k}={v}" for k, v in chosen.items()) + ")"
        combos.append(resolve(combo(merged, where).config, columns))
    default = resolve(combo(base, f"{path}: base").config, columns)
    seen: dict[str, Combo] = {}
    for c in combos:
        seen.setdefault(c.config_id, c)
    if len(seen) < len(combos):
        notes.append(f"{len(combos) - len(seen)} duplicate combination(s) of settings run once")
    return Grid(
        path,
        histories,
        list(seen.values()),
        default,
        columns,
        _walk_forward(data.get("walk_forward"), path),
        notes,
    )


def add_years(t: int, years: int) -> int:
    moment = datetime.fromtimestamp(t, UTC)
    try:
        return int(moment.replace(year=moment.year + years).timestamp())
    except ValueError:  # 29 February
        return int(moment.replace(year=moment.year + years, day=28).timestamp())
