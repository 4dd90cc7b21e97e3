"""`ape run roles keeper <address> [--revoke] --account <owner>`: the vault's keeper role."""

from keeper.cli.roles import cli  # noqa: F401 (ape run looks for `cli`)
