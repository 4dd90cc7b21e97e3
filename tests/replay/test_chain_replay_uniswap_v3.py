"""Chain mode with the spot leg on the official Uniswap v3 contracts (`--spot uniswap-v3`:
a full-range fee-500 pool seeded like the reference pool, the hedge trading it through
UniswapV3Spot, the arbitrageur trading it back to the oracle every step) against model mode
on real history. Full-range v3 is x * y with the fee off the input, kept out of the curve
(`UniswapV3FullRangeModel`): the two agree to far less than 1 bp."""

from __future__ import annotations

import dataclasses

import pytest

from keeper.cli.replay import _moment, load_inputs
from keeper.replay.anvil import run_chain_steps
from keeper.replay.driver import ReplayConfig
from keeper.replay.exact import run_steps
from keeper.replay.scenarios import SCENARIOS
from tests.fixtures.data import data_file

pytestmark = pytest.mark.chain

BP = 1e-4


def test_modes_agree__uniswap_v3_full_range__binance_eth_june_2022() -> None:
    """31 days of real history through the 2022 deleveraging (ETH -45 %, negative funding)."""
    funding = data_file("funding/binance_eth_funding.csv")
    prices = data_file("prices/binance_spot_ETHUSDT_8h_2020-2023_DERIVED_from_4h.csv")
    config = ReplayConfig(depositors=2, spot="uniswap-v3")
    inputs = load_inputs(
        str(funding), str(prices), config, _moment("2022-06-01", "--from"), _moment("2022-07-02", "--to")
    )
    kwargs = {"end_price_e8": inputs.end_price_e8}
    model = run_steps(inputs.steps, config, **kwargs)
    as_reference = run_steps(inputs.steps, dataclasses.replace(config, spot="reference"), **kwargs)
    chain = run_chain_steps(inputs.steps, config, **kwargs)
    gap_bp = abs(chain.share_price_end / model.share_price_end - 1) / BP
    navs = [abs(c.nav - m.nav) / m.nav / BP for c, m in zip(chain.steps, model.steps, strict=True) if m.nav]
    ref_bp = abs(chain.share_price_end / as_reference.share_price_end - 1) / BP
    print(f"\nv3 chain vs v3 model: share price gap {gap_bp:.6f} bp, worst step NAV gap {max(navs):.6f} bp")
    print(f"v3 chain vs the reference (fee-compounding x * y) model: {ref_bp:.6f} bp")
    wei = max(abs(c.nav - m.nav) for c, m in zip(chain.steps, model.steps, strict=True))
    print(f"largest step NAV difference: {wei} wei of the asset")
    assert gap_bp < 1 and wei <= 10  # the pool's sqrt-price rounding, no drift
    assert max(navs) < 1
    assert [s.action for s in chain.steps] == [s.action for s in model.steps]
    assert chain.liquidations == model.liquidations == []
    assert sum(model.rebalances.values()) >= 2 and any(t.swaps for t in chain.trades)


@pytest.mark.parametrize("name", ["squeeze", "pool-dislocation"])
def test_scenario_on_v3__verdicts_pass_and_modes_agree(name: str) -> None:
    """ETH +100 % in a week (the arbitrageur's trades cross several bitmap words; its
    last ones are a few wei, which v3's fee rounding turns into nothing) and the pool 5 %
    off the oracle for a day, on the v3 pool in both modes."""
    scenario, config = SCENARIOS[name], ReplayConfig(spot="uniswap-v3")
    model = run_steps(scenario.steps(), config, scenario=name)
    chain = run_chain_steps(scenario.steps(), config, scenario=name)
    for mode, result in (("model", model), ("chain", chain)):
        failed = [v for v in scenario.judge(result, config) if not v.passed]
        assert not failed, (mode, failed)
    assert abs(chain.share_price_end / model.share_price_end - 1) < BP
    assert [s.action for s in chain.steps] == [s.action for s in model.steps]
    assert max(abs(c.nav - m.nav) for c, m in zip(chain.steps, model.steps, strict=True)) <= 10
