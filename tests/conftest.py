"""The fixtures, as plugin modules of one concern each (tests/fixtures/); test folders'
conftests hold only what is their own. Units are in `tests.units`."""

pytest_plugins = [
    "tests.fixtures.personas",  # every test account, named once
    "tests.fixtures.isolation",  # what a chain test gets first; offline tests get none of it
    "tests.fixtures.chain",  # time travel, batched view reads
    "tests.fixtures.venue",  # the reference venue and the perp market's lockstep harness
    "tests.fixtures.vault",  # a vault's factory, its hedge, the keeper's hedging moves
    "tests.fixtures.uniswap_v3",  # the official Uniswap v3 contracts, the adapter, a vault on them
    "tests.fixtures.data",  # the project's fixtures and the shared market data folder
]
