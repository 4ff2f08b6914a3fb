"""The ``edge-appliance`` command: run the daemon, manage keys, mint tokens and invites, report.

Every subcommand takes ``--config`` and ``--data-dir`` (or ``EDGE_APPLIANCE_CONFIG`` and
``EDGE_APPLIANCE_DATA_DIR``) so the console and the daemon always agree on which files they
use. Only ``run`` creates them: any other command given a config file or data directory that
does not exist says so and stops, rather than acting on a new, empty unit nobody runs.
Errors print one clear line to stderr and exit non-zero; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edge_sfu.errors import SfuError, TwilioError
from edge_sfu.identity import UnitIdentity, load_or_create_identity
from edge_sfu.invites import (
    DEFAULT_INVITE_GUESTS,
    DEFAULT_INVITE_TTL,
    MAX_INVITE_TTL,
    MIN_INVITE_TTL,
    create_invite,
)
from edge_sfu.keys import KeyStore
from edge_sfu.tokens import mint_access_token

from . import __version__
from .config import (
    CONFIG_ENV,
    DATA_DIR_ENV,
    DEFAULT_CONFIG,
    DEFAULT_DATA_DIR,
    ConfigError,
    load_config,
)
from .settings import Settings

DESCRIPTION = "Run the edge-appliance daemon, manage its keys, mint tokens and invites, report."
EPILOG = f"""\
Which unit a command acts on:
  --config PATH     or {CONFIG_ENV}    (default {DEFAULT_CONFIG})
  --data-dir PATH   or {DATA_DIR_ENV}  (default {DEFAULT_DATA_DIR})
Only `run` creates them; every other command stops if they do not exist.
`edge-appliance COMMAND --help` describes each command."""

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        if handler is not _run:
            require_unit(args, data_dir=getattr(args, "needs_data_dir", True))
        return handler(args)
    except (ConfigError, UnitNotFound) as exc:
        print(f"edge-appliance: {exc}", file=sys.stderr)
        return 2
    except (TwilioError, SfuError, OSError, RuntimeError) as exc:
        print(f"edge-appliance: {exc}", file=sys.stderr)
        return 1


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout; one line per command, its help beside its name."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction):
            # argparse measures the command names without the indent it prints them with,
            # so the longest name ("check-config") would push its help onto the next line.
            names = [self._format_action_invocation(a) for a in action._get_subactions()]
            longest = max(map(len, names), default=0) + self._current_indent + 2 * 2
            self._action_max_length = max(self._action_max_length, longest)

    def _format_action(self, action: argparse.Action) -> str:
        if isinstance(action, argparse._SubParsersAction):
            # The commands follow under their section title; no bare "COMMAND" line above them.
            return "".join(self._format_action(a) for a in self._iter_indented_subactions(action))
        return super()._format_action(action)


class _Parser(argparse.ArgumentParser):
    """Every parser and subparser of the command uses the same help layout."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser: argparse.ArgumentParser = _Parser(
        prog="edge-appliance", description=DESCRIPTION, epilog=EPILOG
    )
    parser.add_argument("--version", action="version", version=f"edge-appliance {__version__}")
    common = _Parser(add_help=False)
    for flag, env, default, what in (
        ("--config", CONFIG_ENV, DEFAULT_CONFIG, "TOML config file"),
        ("--data-dir", DATA_DIR_ENV, DEFAULT_DATA_DIR, "the unit's state directory"),
    ):
        common.add_argument(
            flag,
            type=Path,
            metavar="PATH",
            default=Path(os.environ.get(env) or default),
            help=f"{what} (${env}, default %(default)s)",
        )
    sub = parser.add_subparsers(metavar="COMMAND", title="commands")

    run = sub.add_parser("run", parents=[common], help="run the daemon")
    run.add_argument("--listen", metavar="HOST:PORT", help="override http.listen")
    run.add_argument(
        "--dev-config",
        action="store_true",
        help="write a config for trying the unit on this machine if --config does not exist",
    )
    run.set_defaults(handler=_run)

    _add_keys(sub, common)

    token = sub.add_parser("token", parents=[common], help="print an access token")
    token.add_argument("--identity", required=True, help="the participant's identity")
    token.add_argument("--room", help="limit the token to this room")
    token.add_argument("--ttl", type=int, default=3600, help="seconds (at most 86400)")
    token.set_defaults(handler=_token)

    invite = sub.add_parser("invite", parents=[common], help="print a guest invite link")
    invite.add_argument("--room", required=True, help="the room the link joins")
    invite.add_argument(
        "--ttl",
        type=int,
        default=DEFAULT_INVITE_TTL,
        help=f"lifetime in seconds, {MIN_INVITE_TTL} to {MAX_INVITE_TTL} (default %(default)s)",
    )
    invite.add_argument(
        "--guests",
        type=int,
        default=DEFAULT_INVITE_GUESTS,
        help="how many different guests the invite admits (default %(default)s)",
    )
    invite.set_defaults(handler=_invite)

    check = sub.add_parser("check-config", parents=[common], help="validate the config file")
    # The config alone: an installer checks the file before the service made the data dir.
    check.set_defaults(handler=_check_config, needs_data_dir=False)

    from .commands import add_device_commands

    add_device_commands(sub, common)
    return parser


def _add_keys(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(metavar="ACTION", title="actions", required=True)
    create = ksub.add_parser("create", parents=[common], help="create a key; the secret shows once")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(handler=_keys_create)
    lst = ksub.add_parser("list", parents=[common], help="list keys (no secrets)")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(handler=_keys_list)
    revoke = ksub.add_parser("revoke", parents=[common], help="delete a key")
    revoke.add_argument("sid", help="the key's SID (SK…), from `keys list`")
    revoke.set_defaults(handler=_keys_revoke)


def require_unit(args: argparse.Namespace, *, data_dir: bool = True) -> None:
    """Stop unless ``--config`` (and, when the command uses it, ``--data-dir``) exists: only
    ``run`` may create a unit.

    Without this, a command run without the paths would quietly act on the default paths,
    creating an identity, keys or claim code of a unit that is not the one running.
    """
    config: Path = args.config
    if not config.is_file():
        what = "is not a file" if config.exists() else "does not exist"
        raise UnitNotFound(f"config file {config} {what}", CONFIG_ENV, "--config")
    data: Path = args.data_dir
    if data_dir and not data.is_dir():
        what = "is not a directory" if data.exists() else "does not exist"
        raise UnitNotFound(f"data directory {data} {what}", DATA_DIR_ENV, "--data-dir")


class UnitNotFound(Exception):
    """The config file or data directory named for a command does not exist."""

    def __init__(self, problem: str, env: str, flag: str) -> None:
        super().__init__(
            f"{problem}; point the command at the unit with {flag} PATH or {env}=PATH "
            "(`edge-appliance run` creates them)"
        )


def unit_identity(args: argparse.Namespace) -> tuple[UnitIdentity, KeyStore]:
    """The unit's identity and key store in ``--data-dir``."""
    identity = load_or_create_identity(args.data_dir)
    return identity, KeyStore(args.data_dir, builtin=identity.signing_key)


def settings_of(args: argparse.Namespace) -> Settings:
    """The validated settings of ``--config``."""
    return load_config(args.config)


def _keys_create(args: argparse.Namespace) -> int:
    identity, keys = unit_identity(args)
    key = keys.create(args.name)
    if args.json:
        print(
            json.dumps({"sid": key.sid, "secret": key.secret, "account_sid": identity.account_sid})
        )
    else:
        print(f"SID:     {key.sid}\nSecret:  {key.secret}\nAccount: {identity.account_sid}")
        print("Store the secret now: it is not shown again.", file=sys.stderr)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    _, keys = unit_identity(args)
    rows = [k.public() for k in keys.list()]
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        print(f"{row['sid']}  {row['date_created']}  {row['friendly_name']}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    _, keys = unit_identity(args)
    keys.revoke(args.sid)
    print(f"revoked {args.sid}")
    return 0


def _token(args: argparse.Namespace) -> int:
    identity, _ = unit_identity(args)
    settings_of(args)  # a broken config is reported here too, not only at `run`
    token = mint_access_token(
        identity.signing_key, identity.account_sid, args.identity, room=args.room, ttl=args.ttl
    )
    from edge_sfu.rooms.model import utcnow
    from edge_sfu.store import Store

    # No guest may take a name the unit gave out this way (see ``Store.claim_guest``).
    store = Store.in_data_dir(args.data_dir)
    try:
        store.record_issued(args.identity, utcnow())
    finally:
        store.close()
    print(token)
    return 0


def _invite(args: argparse.Namespace) -> int:
    identity, _ = unit_identity(args)
    settings = settings_of(args)
    invite = create_invite(identity.auth_token, args.room, ttl=args.ttl, guests=args.guests)
    from urllib.parse import quote

    from edge_sfu.invites import verify_invite
    from edge_sfu.store import Store

    from .mapping import public_base_url

    # Recorded like the admin page's, so the page lists it and can revoke it.
    made = verify_invite(invite, identity.auth_token)
    store = Store.in_data_dir(args.data_dir)
    try:
        store.record_invite(made.invite_id, args.room, args.guests, made.expires_at)
    finally:
        store.close()

    print(f"{public_base_url(settings)}/join/{quote(args.room, safe='')}?invite={invite}")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    settings_of(args)
    print(f"{args.config}: ok")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .daemon import run_daemon

    return run_daemon(args)


if __name__ == "__main__":
    sys.exit(main())
