"""The exceptions that cross layers: `UserError`, the one exception operator tools raise
for a problem the user can fix, and `SourceError`, a venue answer that could not be
turned into a funding reading.

Library code raises `UserError` with a message that says what is wrong and what to do
about it, in one line; the script boundary (`keeper.cli.common`) prints it as
`error: <message>` and exits 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a state of the chain the user can fix; the message is one line."""


class SourceError(Exception):
    """A response could not be turned into a funding reading. `reason` says why and
    names the field; `venue` says which source. `permanent`: no retry can help (the host
    name does not resolve, the URL is malformed)."""

    def __init__(self, venue: str, reason: str, *, permanent: bool = False) -> None:
        super().__init__(f"{venue}: {reason}")
        self.venue = venue
        self.reason = reason
        self.permanent = permanent
