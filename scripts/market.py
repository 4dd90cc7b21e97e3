"""`ape run market price <usd> | asset-price <usd> | funding <rate> --per 1h|8h | arb | replay <file> |
mirror --coin ETH`

The market feeder for the reference venue (keeper/ops/feeder.py).
"""

from keeper.cli.market import cli  # noqa: F401 (ape run looks for `cli`)
