"""The units the tests count in, and the soak factor."""

import os

USDC = 10**6
WETH = 10**18
SIZE = 10**18  # perp size unit: one whole base
E8 = 10**8
MAX = 2**256 - 1

# `make soak` sets BASIS_SOAK=<factor>: the chain property tests and state machines run
# that many times more examples than `make test` (which keeps the suite within CI's budget).
SOAK = int(os.environ.get("BASIS_SOAK", "1"))
