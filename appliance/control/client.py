"""The control socket's blocking client: what ``edge-appliance press`` (and tests) use."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from .protocol import (
    Button,
    CommandRejected,
    ControlCommand,
    ControlError,
    DaemonNotRunning,
    PressCommand,
    StatusCommand,
    encode_command,
)

__all__ = ["press", "send_command", "status"]


def send_command(
    path: str | os.PathLike[str], command: ControlCommand, *, timeout: float = 5.0
) -> dict[str, Any]:
    """Send one command to the daemon and return its reply (without ``ok``).

    Raises ``DaemonNotRunning`` when nothing listens, ``CommandRejected`` when the daemon
    says no, and ``ControlError`` for permission problems, timeouts and garbled replies; every
    message is fit to print as is.
    """
    sock_path = Path(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        _connect(sock, sock_path)
        try:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                # A daemon refusing us (busy, permission) replies and closes without
                # reading: its reply may still be waiting to be read.
                sock.sendall(encode_command(command))
            line = _read_line(sock)
        except TimeoutError:
            raise ControlError(f"the daemon did not answer within {timeout:g} s") from None
        except OSError as exc:
            raise ControlError(f"lost the connection to the daemon: {exc}") from None
    return _decode_reply(line)


def press(
    path: str | os.PathLike[str], button: Button, *, long: bool = False, timeout: float = 5.0
) -> dict[str, Any]:
    """Press ``button`` ("join" or "mute") on the running daemon."""
    return send_command(path, PressCommand(button, long), timeout=timeout)


def status(path: str | os.PathLike[str], *, timeout: float = 5.0) -> dict[str, Any]:
    """The running daemon's status."""
    return send_command(path, StatusCommand(), timeout=timeout)


def _connect(sock: socket.socket, path: Path) -> None:
    hint = "is it running? (systemctl status edge-appliance)"
    try:
        sock.connect(os.fspath(path))
    except FileNotFoundError:
        raise DaemonNotRunning(f"edge-appliance is not running: no {path}; {hint}") from None
    except ConnectionRefusedError:
        raise DaemonNotRunning(f"edge-appliance is not running: {path} is stale; {hint}") from None
    except PermissionError:
        raise ControlError(
            f"permission denied on {path}: run as root or the edge-appliance user (sudo ...)"
        ) from None
    except TimeoutError:
        raise ControlError(f"the daemon did not accept the connection on {path}") from None
    except OSError as exc:
        raise ControlError(f"cannot connect to {path}: {exc}") from None


def _read_line(sock: socket.socket) -> bytes:
    buf = bytearray()
    while not buf.endswith(b"\n"):
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            if buf:
                break
            raise
        if not chunk:
            break
        buf += chunk
        if len(buf) > 1 << 20:
            raise ControlError("reply too long")
    return bytes(buf)


def _decode_reply(line: bytes) -> dict[str, Any]:
    if not line:
        raise ControlError("the daemon closed the connection without answering")
    try:
        reply = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ControlError(f"garbled reply from the daemon: {line[:200]!r}") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ControlError(f"unexpected reply from the daemon: {line[:200]!r}")
    if not reply.pop("ok"):
        raise CommandRejected(str(reply.get("error", "refused")))
    return reply
