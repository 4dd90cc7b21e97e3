"""`ape run withdraw --amount <units> [--max-shares N] | --shares <n> | --all [--min-out <units>]`

Options also: --max-slippage-bps, --receiver, --owner.
"""

from keeper.cli.depositor import withdraw_cli as cli  # noqa: F401 (ape run looks for `cli`)
