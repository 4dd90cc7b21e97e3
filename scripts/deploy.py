"""`ape run deploy --network <choice> --account <alias> [--config FILE] [--force]`

Deploys the reference venue (unless deploy/<network>.yaml names an existing one), the
BasisHedge blueprint and a BasisVault (whose constructor creates its hedge), then writes
deployments/<chain_id>.json. The logic is keeper/ops/deploy.py.
"""

from keeper.cli.deploy import cli  # noqa: F401 (ape run looks for `cli`)
