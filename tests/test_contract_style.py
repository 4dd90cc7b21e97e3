"""The contracts' house style, checked from source so it cannot drift (no chain needed).

- Every revert reason is `"<contract>: reason"` with the prefix its contract owns (a
  dynamic reason, e.g. `assert ok, reason`, must come from strings that do too).
- Every revert reason the keeper or a test quotes (`ape.reverts`, the models' reverts,
  the operator's explanations) is one a contract or a snekmate module can give.
- Every contract and interface has a module NatSpec (`@title`, `@custom:contract-name`,
  `@license`, `@notice`), every event a `# @dev` comment, and every function (external,
  internal, constructor, interface) a docstring with `@dev` or `@notice`, an `@param`
  for each parameter in order and an `@return` when it returns (snekmate's GUIDELINES).
"""

import ast
import re
from pathlib import Path

import pytest
import snekmate
from vyper.ast import nodes as vy_ast
from vyper.ast import parse_to_ast

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "contracts"

# The revert prefix each contract owns. A new contract must be added here on purpose.
PREFIXES = {
    "BasisVault": "vault",
    "BasisHedge": "hedge",
    "PerpMarket": "perp",
    "SpotPool": "pool",
    "UniswapV3Spot": "pool",
    "PriceFeed": "feed",
    "TestToken": "token",
    "ERC4626Reference": "reference",
}

MODULE_TAGS = {"title", "custom:contract-name", "license", "notice"}
KNOWN_TAGS = {"title", "author", "license", "notice", "dev", "param", "return"}
TAG = re.compile(r"(?:^|\n)\s*@(\S+)\s*([\s\S]*?)(?=\n\s*@\S|\s*$)")


def _sources(pattern: str) -> list[Path]:
    return sorted(CONTRACTS.rglob(pattern))


def _module(path: Path) -> vy_ast.Module:
    return parse_to_ast(path.read_text())


def _tags(docstring: str) -> list[tuple[str, str]]:
    return [(tag, " ".join(value.split())) for tag, value in TAG.findall(docstring)]


def _str(node: vy_ast.VyperNode | None) -> str | None:
    return node.value if isinstance(node, vy_ast.Str | vy_ast.DocStr) else None


def test_contract_style__every_contract_has_a_revert_prefix():
    assert {p.stem for p in _sources("*.vy")} == set(PREFIXES)


@pytest.mark.parametrize("path", _sources("*.vy"), ids=lambda p: p.stem)
def test_contract_style__every_revert_reason_has_the_contract_prefix(path):
    prefix = PREFIXES.get(path.stem)
    assert prefix, f"{path.name}: give it a revert prefix in PREFIXES"
    module = _module(path)
    pattern = re.compile(rf"{prefix}: [a-z0-9]")
    bad: list[str] = []
    dynamic = False
    for node in module.get_descendants(vy_ast.Assert):
        if node.msg is None:
            bad.append(f"line {node.lineno}: assert without a reason")
        elif isinstance(node.msg, vy_ast.Name):
            dynamic = True
        elif (reason := _str(node.msg)) is None or not pattern.match(reason):
            bad.append(f"line {node.lineno}: {reason!r}")
    for node in module.get_descendants(vy_ast.Raise):
        reason = _str(node.exc)
        if reason is None or not pattern.match(reason):
            bad.append(f"line {node.lineno}: raise {reason!r}")
    if dynamic:
        # A reason held in a variable comes from a function returning it: every string a
        # `return` hands back must be a prefixed reason (or "" for "no reason").
        for ret in module.get_descendants(vy_ast.Return):
            for lit in ret.get_descendants(vy_ast.Str, include_self=True):
                if lit.value and not pattern.match(lit.value):
                    bad.append(f"line {lit.lineno}: returned reason {lit.value!r}")
    assert not bad, f"{path.name}: reasons must start with '{prefix}: '\n" + "\n".join(bad)


@pytest.mark.parametrize("path", _sources("*.vy") + _sources("*.vyi"), ids=lambda p: p.name)
def test_contract_style__full_natspec(path):
    module = _module(path)
    problems: list[str] = []
    doc = _str(module.get("doc_string"))
    if doc is None:
        problems.append("no module docstring")
    else:
        present = {tag for tag, _ in _tags(doc)}
        problems += [f"module docstring lacks @{tag}" for tag in sorted(MODULE_TAGS - present)]
    # An event cannot hold a docstring: its NatSpec is the `# @dev` comment above it.
    lines = path.read_text().splitlines()
    for event in module.get_children(vy_ast.EventDef):
        above = lines[: event.lineno - 1]
        comment: list[str] = []
        while above and above[-1].startswith("#"):
            comment.append(above.pop())
        if not any(line.startswith("# @dev") for line in comment):
            problems.append(f"event {event.name} (line {event.lineno}): no `# @dev` comment above")
    for fn in module.get_children(vy_ast.FunctionDef):
        where = f"{fn.name} (line {fn.lineno})"
        doc = _str(fn.get("doc_string"))
        if doc is None:
            problems.append(f"{where}: no docstring")
            continue
        tags = _tags(doc)
        names = [tag for tag, _ in tags]
        unknown = {t for t in names if t not in KNOWN_TAGS and not t.startswith("custom:")}
        if unknown:
            problems.append(f"{where}: unknown tags {sorted(unknown)}")
        if "dev" not in names and "notice" not in names:
            problems.append(f"{where}: neither @dev nor @notice")
        documented = [value.split(maxsplit=1)[0] for tag, value in tags if tag == "param" and value]
        args = [arg.arg for arg in fn.args.args]
        if documented != args:
            problems.append(f"{where}: @param {documented} != parameters {args}")
        returns = "return" in names
        if returns != (fn.returns is not None):
            problems.append(f"{where}: @return {'present' if returns else 'missing'}")
        if any(not value for _, value in tags):
            problems.append(f"{where}: a tag without text")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def _reasons() -> set[str]:
    """Every revert reason the contracts and the snekmate modules can give."""
    reasons: set[str] = set()
    for path in _sources("*.vy"):
        module = _module(path)
        for node in module.get_descendants(vy_ast.Assert):
            if (reason := _str(node.msg)) is not None:
                reasons.add(reason)
        for ret in module.get_descendants(vy_ast.Return):
            reasons |= {lit.value for lit in ret.get_descendants(vy_ast.Str, include_self=True) if lit.value}
    for root in snekmate.__path__:
        for path in Path(root).rglob("*.vy"):
            reasons |= set(re.findall(r'"([a-z0-9_]+: [^"]+)"', path.read_text()))
    return reasons


def test_contract_style__python_quotes_only_real_reasons():
    # A string shaped like a reason ("vault: ...", "erc20: ...") in the keeper or a test.
    snekmate_owners = ["access_control", "ownable", "ownable_2step", "pausable", "erc20", "erc4626", "math"]
    owners = [*PREFIXES.values(), *snekmate_owners]
    shaped = re.compile(rf"(?:{'|'.join(owners)}): [a-z]")
    reasons = _reasons()
    stale: list[str] = []
    for path in sorted((ROOT / "keeper").rglob("*.py")) + sorted((ROOT / "tests").rglob("*.py")):
        if path.resolve() == Path(__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if shaped.match(node.value) and node.value not in reasons and "..." not in node.value:
                stale.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not stale, "no contract reverts with these:\n" + "\n".join(stale)
