"""`ape run deposit --amount <units> [--receiver ADDR] [--min-shares N] [--faucet] [--no-approve]`"""

from keeper.cli.depositor import deposit_cli as cli  # noqa: F401 (ape run looks for `cli`)
