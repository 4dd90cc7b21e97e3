"""Plain-Python models of the on-chain parts, exact to the wei.

They mirror the Vyper integer arithmetic (same formulas, same rounding directions), so the
hypothesis tests can hold the contracts to them and the replay's model mode can run the
same economics without a chain.
"""
