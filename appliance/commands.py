"""Subcommands that talk to the devices, the admin state or the running daemon."""

from __future__ import annotations

import argparse
import sys

from .config import load_config


def add_device_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``doctor``, ``press``, ``claim-code`` and ``admin``."""
    doctor = sub.add_parser("doctor", parents=[common], help="which backend each part got, and why")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.set_defaults(handler=_doctor, needs_data_dir=False)  # it probes devices only

    press = sub.add_parser("press", parents=[common], help="press a button on the running daemon")
    press.add_argument(
        "button", choices=("join", "mute"), help="join (join or leave the room) or mute"
    )
    press.add_argument("--long", action="store_true", help="a long press (join button)")
    press.set_defaults(handler=_press)

    claim = sub.add_parser("claim-code", parents=[common], help="print the one-time claim code")
    claim.set_defaults(handler=_claim_code)

    admin = sub.add_parser("admin", help="admin account on this unit's console")
    asub = admin.add_subparsers(metavar="ACTION", title="actions", required=True)
    reset = asub.add_parser(
        "reset-password", parents=[common], help="forget the admin password; print a new claim code"
    )
    reset.set_defaults(handler=_reset_password)


def _doctor(args: argparse.Namespace) -> int:
    from hardware.doctor import collect, format_table, to_json

    from .mapping import audio_spec, camera_spec

    settings = load_config(args.config)
    rows = collect(camera_spec(settings), audio_spec(settings), settings.gpio.pin_factory)
    print(to_json(rows) if args.json else format_table(rows))
    return 0


def _press(args: argparse.Namespace) -> int:
    from .control.client import press
    from .control.protocol import ControlError, default_socket_path

    try:
        reply = press(default_socket_path(args.data_dir), args.button, long=args.long)
    except ControlError as exc:
        print(f"edge-appliance: {exc}", file=sys.stderr)
        return 1
    print(press_report(args.button, reply))
    return 0


def press_report(button: str, reply: dict[str, object]) -> str:
    """One line saying whether the daemon acted on the press, and the state it is now in."""
    outcome = "acted on" if reply.get("acted") else "ignored in this state"
    return f"{button}: {outcome}; now {reply.get('state', '?')}: {reply.get('status', '')}"


def _claim_code(args: argparse.Namespace) -> int:
    from provisioning.claim import current_claim_code

    code = current_claim_code(args.data_dir)
    if code is None:
        print("this unit is already claimed; to start over: edge-appliance admin reset-password")
        return 1
    print(code)
    return 0


def _reset_password(args: argparse.Namespace) -> int:
    from provisioning.auth import reset_password

    code = reset_password(args.data_dir)
    print("The admin password is forgotten and every session is signed out.")
    print(f"Claim the unit again at /admin/ with this code: {code}")
    return 0
