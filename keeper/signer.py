"""The keeper's key: an ape keystore account, unlocked from the environment.

ape keeps encrypted keyfiles (standard Ethereum V3 keystores) in `$APE_DATA_FOLDER/accounts`
(default `~/.ape/accounts`); `ape accounts import <alias>` creates one. The keeper reads
the same file and takes the passphrase from `APE_ACCOUNTS_<alias>_PASSPHRASE`, ape's own
variable, so an operator sets one secret for scripts and keeper alike. The key lives only
in memory; neither it nor the passphrase is ever logged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount


class SignerError(Exception):
    """The account cannot be loaded; the message says what to do."""


def ape_data_folder() -> Path:
    return Path(os.environ.get("APE_DATA_FOLDER") or Path.home() / ".ape")


def passphrase_variable(alias: str) -> str:
    return f"APE_ACCOUNTS_{alias}_PASSPHRASE"


def load_keystore_account(alias: str, *, data_folder: Path | None = None) -> LocalAccount:
    folder = (data_folder or ape_data_folder()) / "accounts"
    keyfile = folder / f"{alias}.json"
    if not keyfile.is_file():
        known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        hint = f"known: {', '.join(known)}" if known else f"import one with `ape accounts import {alias}`"
        raise SignerError(f"no keystore account '{alias}' in {folder} ({hint})")
    passphrase = os.environ.get(passphrase_variable(alias))
    if not passphrase:
        raise SignerError(f"account '{alias}' is locked: set {passphrase_variable(alias)} to its passphrase")
    try:
        key = Account.decrypt(json.loads(keyfile.read_text(encoding="utf-8")), passphrase)
    except ValueError:
        raise SignerError(f"account '{alias}': wrong passphrase in {passphrase_variable(alias)}") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise SignerError(f"account '{alias}': {keyfile} is not a keystore file") from None
    account: LocalAccount = Account.from_key(key)
    return account
