"""The keeper's key: an ape keystore account unlocked from the environment, or one of
anvil's prefunded test accounts (`TEST::<n>`) on a local chain.

ape keeps encrypted keyfiles (standard Ethereum V3 keystores) in `$APE_DATA_FOLDER/accounts`
(default `~/.ape/accounts`); `ape accounts import <alias>` creates one. The keeper reads the
same file. Its passphrase comes, first found, from `--passphrase-file` /
`BASIS_KEEPER_PASSPHRASE_FILE`, from `BASIS_KEEPER_PASSPHRASE`, or from ape's own
`APE_ACCOUNTS_<alias>_PASSPHRASE` (which a shell can only export when the alias is a valid
identifier: `keeper-bot` is not). The key lives only in memory; neither it nor the
passphrase is ever logged.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount


class SignerError(Exception):
    """The account cannot be loaded; the message says what to do."""


# ape-config.yaml's `test.mnemonic`: anvil's default accounts, which `ape run` calls TEST::<n>.
TEST_MNEMONIC = "test test test test test test test test test test test junk"
TEST_ACCOUNTS = 10
# Chains where TEST::<n> keys are anvil's throwaway accounts (never a public network).
LOCAL_CHAIN_IDS = frozenset({31337, 1337})
PASSPHRASE_ENV = "BASIS_KEEPER_PASSPHRASE"
_TEST_ALIAS = re.compile(r"TEST::(\d+)", re.IGNORECASE)


def ape_data_folder() -> Path:
    return Path(os.environ.get("APE_DATA_FOLDER") or Path.home() / ".ape")


def passphrase_variable(alias: str) -> str:
    return f"APE_ACCOUNTS_{alias}_PASSPHRASE"


def exportable(variable: str) -> bool:
    """Whether a POSIX shell can `export` this name (`APE_ACCOUNTS_keeper-bot_...` cannot)."""
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable) is not None


def is_test_alias(alias: str) -> bool:
    return alias.upper().startswith("TEST::")


def test_account(alias: str, chain_id: int) -> LocalAccount:
    """`TEST::<n>`: anvil's n-th prefunded account, on a local chain only."""
    if chain_id not in LOCAL_CHAIN_IDS:
        raise SignerError(
            f"{alias} exists on local chains only (chain {chain_id} is not one): import a key with "
            "`ape accounts import <alias>` and pass --account <alias>"
        )
    match = _TEST_ALIAS.fullmatch(alias)
    if match is None or int(match.group(1)) >= TEST_ACCOUNTS:
        raise SignerError(f"no test account '{alias}': use TEST::0 to TEST::{TEST_ACCOUNTS - 1}")
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(
        TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{int(match.group(1))}"
    )
    return account


def _passphrase(alias: str, passphrase_file: Path | None) -> tuple[str | None, str]:
    """(passphrase, where it came from)."""
    if passphrase_file is not None:
        try:
            text = Path(passphrase_file).read_text(encoding="utf-8")
        except OSError as err:
            raise SignerError(f"cannot read the passphrase file {passphrase_file}: {err.strerror}") from None
        return text.rstrip("\r\n"), f"--passphrase-file {passphrase_file}"
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV], PASSPHRASE_ENV
    ape_variable = passphrase_variable(alias)
    return os.environ.get(ape_variable) or None, ape_variable


def load_keystore_account(
    alias: str, *, data_folder: Path | None = None, passphrase_file: Path | None = None
) -> LocalAccount:
    folder = (data_folder or ape_data_folder()) / "accounts"
    keyfile = folder / f"{alias}.json"
    if not keyfile.is_file():
        known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        hint = f"known: {', '.join(known)}" if known else f"import one with `ape accounts import {alias}`"
        local = "; or TEST::<n> on a local chain" if not known else ""
        raise SignerError(f"no keystore account '{alias}' in {folder} ({hint}{local})")
    passphrase, source = _passphrase(alias, passphrase_file)
    if not passphrase:
        ape_variable = passphrase_variable(alias)
        also = f" (or {ape_variable})" if exportable(ape_variable) else ""
        raise SignerError(
            f"account '{alias}' is locked: export {PASSPHRASE_ENV}=<its passphrase>{also}, "
            "or pass --passphrase-file FILE"
        )
    try:
        key = Account.decrypt(json.loads(keyfile.read_text(encoding="utf-8")), passphrase)
    except ValueError:
        raise SignerError(f"account '{alias}': wrong passphrase in {source}") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise SignerError(f"account '{alias}': {keyfile} is not a keystore file") from None
    account: LocalAccount = Account.from_key(key)
    return account
