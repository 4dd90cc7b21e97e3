"""`ape run withdraw --amount <units> | --shares <n> | --all [--min-out <units>] [--receiver] [--owner]`"""

from keeper.cli.depositor import withdraw_cli as cli  # noqa: F401 (ape run looks for `cli`)
