"""`ape run status [--json] [--holder ADDR]`: NAV, legs, delta, margin, funding, rules, roles."""

from keeper.cli.depositor import status_cli as cli  # noqa: F401 (ape run looks for `cli`)
