"""The one exception operator tools raise for a problem the user can fix.

Library code raises `UserError` with a message that says what is wrong and what to do
about it, in one line; the script boundary (`keeper.cli.common`) prints it as
`error: <message>` and exits 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a state of the chain the user can fix; the message is one line."""
