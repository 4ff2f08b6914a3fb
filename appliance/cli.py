"""The ``edge-appliance`` command: run the daemon, manage keys, mint tokens and invites, report.

Every subcommand takes ``--config`` and ``--data-dir`` so the console and the daemon always
agree on which files they use. Errors print one clear line to stderr and exit non-zero;
tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_sfu.errors import SfuError, TwilioError
from edge_sfu.identity import UnitIdentity, load_or_create_identity
from edge_sfu.invites import DEFAULT_INVITE_GUESTS, DEFAULT_INVITE_TTL, create_invite
from edge_sfu.keys import KeyStore
from edge_sfu.tokens import mint_access_token

from . import __version__
from .config import DEFAULT_CONFIG, DEFAULT_DATA_DIR, ConfigError, load_config
from .settings import Settings

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
        return handler(args)
    except ConfigError as exc:
        print(f"edge-appliance: {exc}", file=sys.stderr)
        return 2
    except (TwilioError, SfuError, OSError, RuntimeError) as exc:
        print(f"edge-appliance: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="edge-appliance", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edge-appliance {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="TOML config file")
    common.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="state directory")
    sub = parser.add_subparsers(metavar="COMMAND")

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
    token.add_argument("--identity", required=True)
    token.add_argument("--room")
    token.add_argument("--ttl", type=int, default=3600, help="seconds (at most 86400)")
    token.set_defaults(handler=_token)

    invite = sub.add_parser("invite", parents=[common], help="print a guest invite link")
    invite.add_argument("--room", required=True)
    invite.add_argument("--ttl", type=int, default=DEFAULT_INVITE_TTL, help="seconds")
    invite.add_argument(
        "--guests",
        type=int,
        default=DEFAULT_INVITE_GUESTS,
        help="how many different guests the invite admits",
    )
    invite.set_defaults(handler=_invite)

    check = sub.add_parser("check-config", parents=[common], help="validate the config file")
    check.set_defaults(handler=_check_config)

    from .commands import add_device_commands

    add_device_commands(sub, common)
    return parser


def _add_keys(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(metavar="ACTION", required=True)
    create = ksub.add_parser("create", parents=[common], help="create a key; the secret shows once")
    create.add_argument("--name", required=True)
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=_keys_create)
    lst = ksub.add_parser("list", parents=[common], help="list keys (no secrets)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=_keys_list)
    revoke = ksub.add_parser("revoke", parents=[common], help="delete a key")
    revoke.add_argument("sid")
    revoke.set_defaults(handler=_keys_revoke)


def unit_identity(args: argparse.Namespace) -> tuple[UnitIdentity, KeyStore]:
    """The unit's identity and key store in ``--data-dir`` (created on first use)."""
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

    from .mapping import public_base_url

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
