"""`ape run status [--json] [--holder ADDR]`: NAV, the hedge (venue short vs booked,
liquidations, keeper budget, unwind), delta, margin, feeds, funding, rules, roles."""

from keeper.cli.depositor import status_cli as cli  # noqa: F401 (ape run looks for `cli`)
