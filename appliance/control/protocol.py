"""The control socket's protocol: commands, their wire form, errors, where the socket is.

A Unix stream socket (``<data-dir>/control.sock``) carrying line-delimited JSON::

    -> {"cmd": "press", "button": "join"}              (or "mute"; "long": true for a hold)
    <- {"ok": true, "state": "joining", ...}
    -> {"cmd": "status"}
    <- {"ok": true, "state": "in_call", "status": "In call Boardroom", ...}
    -> nonsense
    <- {"ok": false, "error": "not JSON: ..."}          (and the connection is closed)

The daemon serves it (``appliance.control.server``); ``edge-appliance press`` and tests talk
to it (``appliance.control.client``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "MAX_LINE",
    "SOCKET_NAME",
    "BadCommand",
    "Button",
    "CommandRejected",
    "ControlCommand",
    "ControlError",
    "ControlSocketInUse",
    "DaemonNotRunning",
    "PressCommand",
    "StatusCommand",
    "default_socket_path",
    "encode_command",
    "parse_command",
]

SOCKET_NAME = "control.sock"
#: The longest command line the server reads.
MAX_LINE = 4096


def default_socket_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where the daemon listens and the CLI connects, for a given data directory."""
    return Path(data_dir) / SOCKET_NAME


# --- errors -----------------------------------------------------------------------------------


class ControlError(Exception):
    """Root of the control socket's errors."""


class DaemonNotRunning(ControlError, ConnectionError):
    """Nothing is listening on the control socket."""


class CommandRejected(ControlError, ValueError):
    """The daemon answered with ``{"ok": false}``; the message is its reason."""


class BadCommand(ControlError, ValueError):
    """A command line that is not valid JSON or not a known command (server side).

    A handler may raise it too, for a well-formed command that makes no sense now
    (``press`` on a hub); that reply keeps the connection open.
    """


class ControlSocketInUse(ControlError, OSError):
    """The socket path is held by a running daemon, or by something that is not a socket."""


# --- commands ---------------------------------------------------------------------------------

Button = Literal["join", "mute"]


@dataclass(frozen=True, slots=True)
class PressCommand:
    """Press a button as if on the unit; ``long`` is a hold (join button only)."""

    button: Button
    long: bool = False


@dataclass(frozen=True, slots=True)
class StatusCommand:
    """Ask for the daemon's status."""


ControlCommand = PressCommand | StatusCommand


def parse_command(line: bytes) -> ControlCommand:
    """Parse one JSON command line; raise ``BadCommand`` saying what is wrong."""
    try:
        data = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadCommand("not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadCommand(f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise BadCommand("a command is a JSON object")
    cmd = data.get("cmd")
    if cmd == "status":
        _no_extra_keys(data, {"cmd"})
        return StatusCommand()
    if cmd == "press":
        _no_extra_keys(data, {"cmd", "button", "long"})
        button, long = data.get("button"), data.get("long", False)
        if button not in ("join", "mute"):
            raise BadCommand('press needs "button": "join" or "mute"')
        if not isinstance(long, bool):
            raise BadCommand('"long" must be true or false')
        if long and button != "join":
            raise BadCommand("only the join button has a long press")
        return PressCommand(button, long)
    raise BadCommand(f"unknown command {cmd!r}; known: press, status")


def _no_extra_keys(data: dict[str, Any], allowed: set[str]) -> None:
    extra = set(data) - allowed
    if extra:
        raise BadCommand(f"unknown field(s): {', '.join(sorted(extra))}")


def encode_command(command: ControlCommand) -> bytes:
    """The wire form of ``command``, newline included."""
    if isinstance(command, StatusCommand):
        payload: dict[str, Any] = {"cmd": "status"}
    else:
        payload = {"cmd": "press", "button": command.button}
        if command.long:
            payload["long"] = True
    return json.dumps(payload).encode() + b"\n"
