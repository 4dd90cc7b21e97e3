"""The vault tests' vault: deployed by the factory, alice and bob funded and approved."""

import pytest

from tests.fixtures.vault import fund
from tests.units import USDC


@pytest.fixture(scope="module")
def vault(create_vault, usdc, alice, bob):
    v = create_vault()
    fund(usdc, v, alice, 1_000_000 * USDC)
    fund(usdc, v, bob, 5_000_000 * USDC)
    return v
