"""`ape run admin pause | unpause | shutdown | unwind [--step N|auto] | set-keeper ADDR [--revoke] |
set-guardian ADDR | set-fees --management-bps N --performance-bps N | set-fee-recipient ADDR |
set-deposit-cap UNITS | transfer-ownership ADDR | accept-ownership | sync`

Owner and guardian calls on the vault, and the hedge's unwind and sync (keeper/cli/admin.py).
"""

from keeper.cli.admin import cli  # noqa: F401 (ape run looks for `cli`)
