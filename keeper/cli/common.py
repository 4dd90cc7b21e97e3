"""What every operator command shares: the network, the signing account, the error line.

Commands take `--network` (default `ethereum:local:node`, the standalone anvil `make node`
starts) and `--account` (an ape account alias, or `TEST::<n>` on a local chain). Before ape
connects, the RPC is probed, so an unreachable node or a missing RPC variable is one line,
not a traceback. A keystore account is unlocked once, from `APE_ACCOUNTS_<alias>_PASSPHRASE`
when set (non-interactive runs), else by prompting in a terminal.

Any `UserError` (and the usual ape transport/transaction failures) ends the command with
`error: <one line>` on stderr and exit status 1; credentials in any URL it quotes are masked.
A `.env` file in the working directory is read first (variables already set win). An RPC URL
with `user:password@` is probed with HTTP basic auth and handed to ape as it is (web3 sends
the same header); the resolver only ever sees the host.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click

from keeper.chain.signer import exportable, passphrase_variable
from keeper.core.errors import UserError
from keeper.net.rpc import basic_auth, redact, scrub
from keeper.ops.deployment import Deployment, chain_id_of

DEFAULT_NETWORK = "ethereum:local:node"
NETWORK_ENV = "BASIS_NETWORK"
# The RPC URL variables ape-config.yaml reads for its `node` networks.
RPC_ENV = {"ethereum:local:node": "BASIS_RPC_URL", "ethereum:sepolia:node": "SEPOLIA_RPC_URL"}
RPC_DEFAULTS = {"BASIS_RPC_URL": "http://127.0.0.1:8545"}
PROBE_TIMEOUT_SECONDS = 5.0
# A passphrase for any alias (ape's APE_ACCOUNTS_<alias>_PASSPHRASE cannot be exported for
# aliases such as `keeper-bot`).
PASSPHRASE_ENV = "BASIS_PASSPHRASE"

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> NoReturn:
    click.echo(f"error: {scrub(message)}", err=True)
    sys.exit(1)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@contextmanager
def error_boundary() -> Iterator[None]:
    """UserError and ape's expected failures -> `error: ...`, exit 1. Bugs keep their traceback."""
    from ape.exceptions import AccountsError, ApeException, ProviderError, TransactionError
    from requests.exceptions import ConnectionError as RequestsConnectionError

    try:
        yield
    except UserError as err:
        fail(str(err))
    except KeyboardInterrupt:
        fail("interrupted")
    except AccountsError as err:
        fail(f"account: {_first_line(err)}")
    except TransactionError as err:
        fail(f"transaction failed: {_first_line(err)}")
    except (ProviderError, RequestsConnectionError, ConnectionError) as err:
        fail(f"lost the connection to the node: {_first_line(err)}")
    except ApeException as err:
        fail(f"{type(err).__name__}: {_first_line(err)}")


# ----------------------------------------------------------------------------- network


def probe_rpc(url: str, hint: str) -> int:
    """The chain id the node at `url` reports; a UserError when it cannot be reached."""
    if not url.startswith(("http://", "https://")):
        raise UserError(f"RPC URL '{redact(url)}' must start with http:// or https:// ({hint})")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    plain, auth = basic_auth(url)  # user:password@ goes in a header, never to the resolver
    headers = {"Content-Type": "application/json", **auth}
    try:
        request = urllib.request.Request(plain, data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_SECONDS) as response:
            answer = json.loads(response.read())
        return int(answer["result"], 16)
    except urllib.error.HTTPError as err:
        raise UserError(f"the RPC at {redact(url)} answered HTTP {err.code}; {hint}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"cannot reach the RPC at {redact(url)} ({reason}); {hint}") from None
    except (ValueError, KeyError, TypeError):
        raise UserError(f"the RPC at {redact(url)} did not answer eth_chainId like a node; {hint}") from None


def _rpc_url(choice: str) -> tuple[str, str] | None:
    """(url, hint) for the networks ape-config.yaml maps to an environment variable."""
    env = RPC_ENV.get(choice)
    if env is None:
        return None
    url = os.environ.get(env) or RPC_DEFAULTS.get(env)
    if not url:
        raise UserError(f"{env} is not set: export {env}=<https RPC URL of your {choice.split(':')[1]} node>")
    if env == "BASIS_RPC_URL":
        return url, f"start one with `make node`, or set {env}"
    return url, f"check {env}"


@dataclass
class Session:
    """A connected network, as commands see it."""

    choice: str
    provider: Any
    chain: Any
    project: Any
    chain_id: int

    @property
    def is_local(self) -> bool:
        return bool(self.provider.network.name == "local")

    @property
    def ephemeral(self) -> bool:
        """A chain ape started for this command alone (it disappears when the command ends)."""
        return self.is_local and self.provider.name in ("foundry", "test")

    def deployment(self) -> Deployment:
        return Deployment.load(self.project, self.chain)


@contextmanager
def connected(choice: str) -> Iterator[Session]:
    from ape import chain, networks, project
    from ape.exceptions import ApeException

    try:
        networks.get_provider_from_choice(network_choice=choice)
    except ApeException as err:
        known = ", ".join([*RPC_ENV, "ethereum:local:foundry"])
        raise UserError(f"unknown network '{choice}' ({_first_line(err)}); use one of {known}") from None
    expected = None
    settings: dict[str, Any] = {}
    if target := _rpc_url(choice):
        url, hint = target
        reported = probe_rpc(url, hint)
        expected = reported
        settings["uri"] = url  # the URL probed (also one from .env, read after ape's config)
    try:
        context = networks.parse_network_choice(choice, provider_settings=settings or None)
        provider = context.__enter__()
    except ApeException as err:
        raise UserError(f"cannot connect to {choice}: {_first_line(err)}") from None
    try:
        chain_id = chain_id_of(provider)
        network = provider.network
        if network.name != "local" and not network.name.endswith("-fork") and chain_id != network.chain_id:
            raise UserError(
                f"the RPC for {choice} serves chain {chain_id}, not {network.name} ({network.chain_id})"
            )
        if expected is not None and expected != chain_id:  # pragma: no cover (a node that changes its mind)
            raise UserError(f"the RPC answered chain {expected} and then {chain_id}")
        _check_confirmations(provider, choice)
        yield Session(choice=choice, provider=provider, chain=chain, project=project, chain_id=chain_id)
    finally:
        context.__exit__(*sys.exc_info())


def _check_confirmations(provider: Any, choice: str) -> None:
    """An auto-mining anvil standing in for a public network makes no block after the last
    transaction, so ape's wait for N confirmations would never end: refuse up front."""
    needed = int(getattr(provider.network, "required_confirmations", 0) or 0)
    if provider.network.name == "local" or needed == 0:
        return
    try:
        automine = provider.make_request("anvil_getAutomine", [])
    except Exception:  # not anvil: a real node mines on its own
        return
    if automine is True:
        ecosystem, network = choice.split(":")[:2]
        variable = f"APE_{ecosystem}_{network}".upper().replace("-", "_")
        raise UserError(
            f"the node behind {choice} is an auto-mining anvil: ape would wait forever for {needed} "
            f"confirmations; export {variable}='{{\"required_confirmations\": 0}}' for this rehearsal"
        )


# ----------------------------------------------------------------------------- accounts


class _CachedKeyNotice(logging.Filter):
    """Drops ape's per-transaction "Using cached key for <alias>" warning: keeping the key
    unlocked for the whole command is what `unlock` chose, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Using cached key for")


def unlock(account: Any) -> None:
    """Unlocks a keystore account for the whole command (one passphrase, no per-tx prompt)."""
    from ape.logging import LogLevel, logger
    from ape_accounts.accounts import InvalidPasswordError

    alias = account.alias
    env = passphrase_variable(alias)
    passphrase = os.environ.get(env)
    if not passphrase and os.environ.get(PASSPHRASE_ENV):
        env, passphrase = PASSPHRASE_ENV, os.environ[PASSPHRASE_ENV]
    if not passphrase and not sys.stdin.isatty():
        also = f" (or {env})" if exportable(env) else ""
        raise UserError(
            f"account '{alias}' is locked: export {PASSPHRASE_ENV}=<its passphrase>{also}, "
            "or run in a terminal to type it"
        )
    try:
        with logger.at_level(LogLevel.ERROR):  # ape warns that autosign signs anything: it is our choice
            account.set_autosign(True, passphrase=passphrase)
    except InvalidPasswordError:
        source = f" (from {env})" if passphrase else ""
        raise UserError(f"wrong passphrase for account '{alias}'{source}") from None
    logging.getLogger("ape").addFilter(_CachedKeyNotice())


def load_account(alias: str | None, session: Session) -> Any:
    from ape import accounts
    from ape_accounts.accounts import KeyfileAccount

    if not alias:
        raise UserError(
            "--account is required: an ape account alias (`ape accounts list`), or TEST::0 locally"
        )
    if alias.upper().startswith("TEST::"):
        if not session.is_local:
            raise UserError(
                f"test accounts exist only on local chains; on {session.choice} sign with an imported "
                "account (`ape accounts import <alias>`)"
            )
        index = alias[6:]
        count = len(accounts.test_accounts)
        if not index.isdigit() or int(index) >= count:
            raise UserError(f"no test account '{alias}': use TEST::0 to TEST::{count - 1}")
        return accounts.test_accounts[int(index)]
    aliases = sorted(accounts.aliases)
    if alias not in aliases:
        have = f"yours: {', '.join(aliases)}" if aliases else "none imported yet"
        raise UserError(
            f"no ape account named '{alias}' ({have}); import one with `ape accounts import {alias}`"
        )
    account = accounts.load(alias)
    if isinstance(account, KeyfileAccount):
        unlock(account)
    return account


# ----------------------------------------------------------------------------- commands


def network_option(f: F) -> F:
    return click.option(
        "--network",
        default=lambda: os.environ.get(NETWORK_ENV) or DEFAULT_NETWORK,
        show_default=f"${NETWORK_ENV} or {DEFAULT_NETWORK}",
        help="ape network choice: ethereum:local:node (make node), ethereum:sepolia:node, ...",
    )(f)


def account_option(f: F) -> F:
    return click.option(
        "--account",
        "account_alias",
        metavar="ALIAS",
        help="ape account alias that signs, or TEST::<n> locally",
    )(f)


def verbosity_option(f: F) -> F:
    from ape.cli.options import verbosity_option as ape_verbosity

    return ape_verbosity(default="WARNING")(f)  # type: ignore[no-any-return]


def operator_command(
    *,
    signs: bool = True,
    before_connect: Callable[[str, dict[str, Any]], None] | None = None,
    **command_kwargs: Any,
) -> Callable[[Callable[..., None]], click.Command]:
    """A click command run inside the error boundary on a connected network. The body gets
    the `Session`, then the signing account when `signs`, then its own options.
    `before_connect(network, options)` may refuse the command before any connection."""

    def decorate(body: Callable[..., None]) -> click.Command:
        @functools.wraps(body)
        def callback(network: str, account_alias: str | None = None, **kwargs: Any) -> None:
            with error_boundary():
                if before_connect is not None:
                    before_connect(network, kwargs)
            with error_boundary(), connected(network) as session:
                if signs:
                    body(session, load_account(account_alias, session), **kwargs)
                else:
                    body(session, **kwargs)

        decorated: Callable[..., Any] = network_option(callback)
        if signs:
            decorated = account_option(decorated)
        decorated = verbosity_option(decorated)
        command: click.Command = click.command(**command_kwargs)(decorated)
        return command

    return decorate
