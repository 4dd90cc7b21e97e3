"""Assertions the operator-tool tests share."""

import pytest

from keeper.core.errors import UserError


def refused(match, fn, *args, **kwargs):
    """`fn(*args, **kwargs)` raises `UserError` matching `match`, in one line; its message."""
    with pytest.raises(UserError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)
