"""The model replay prices keeper calls with `keeper.replay.driver.GAS_UNITS`: measured
here on the contracts as they are (same order as `make bench`), so a gas change in the
vault or the hedge shows up as a failing test rather than a silently wrong cost."""

import pytest

from keeper.ops.contracts import arb_to_oracle
from keeper.replay.driver import GAS_UNITS

TOLERANCE = 0.15  # the contracts' storage layout may still move a little


@pytest.fixture(scope="module", autouse=True)
def _deploy_first(vault, hedge):
    """The vault exists before the first test's snapshot (no isolation rebase)."""


def test_gas_units__match_the_contracts(vault, hedge, venue, alice, keeper, deployer, chain):
    vault.deposit(500_000 * 10**6, alice, sender=alice)
    arb_to_oracle(venue, deployer)
    perp = venue.perp_market

    def targets(leverage: float) -> tuple[int, int]:
        nav, price = vault.totalAssets(), perp.index_price()
        spot_value = int(nav * leverage / (leverage + 1))
        return spot_value * 9_980 // 10_000 * 10**18 * 10**8 // (price * 10**6), nav - spot_value

    deadline = chain.pending_timestamp + 3_600
    gas = {"open": hedge.rebalance(*targets(2.0), 50, deadline, sender=keeper).gas_used}
    gas["adjust"] = hedge.rebalance(*targets(3.0), 50, deadline, sender=keeper).gas_used
    perp.accrue_funding(sender=deployer)
    venue.price_feed.set_price(venue.price_feed.latestAnswer() * 122 // 100, sender=deployer)  # +22 %
    arb_to_oracle(venue, deployer)
    gas["emergency"] = hedge.emergency_deleverage(sender=deployer).gas_used
    gas["park"] = hedge.rebalance(0, 0, 50, chain.pending_timestamp + 3_600, sender=keeper).gas_used
    hedge.rebalance(*targets(2.0), 50, chain.pending_timestamp + 3_600, sender=keeper)
    vault.shutdown(sender=deployer)
    gas["unwind"] = hedge.unwind(hedge.short_size() // 2, sender=deployer).gas_used
    assert set(gas) == set(GAS_UNITS)
    for kind, used in gas.items():
        assert abs(used - GAS_UNITS[kind]) <= GAS_UNITS[kind] * TOLERANCE, (kind, used, GAS_UNITS[kind])
