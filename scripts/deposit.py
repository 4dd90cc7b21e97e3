"""`ape run deposit --amount <units> [--min-shares N | --max-slippage-bps B] [--faucet] [--no-approve]`"""

from keeper.cli.depositor import deposit_cli as cli  # noqa: F401 (ape run looks for `cli`)
