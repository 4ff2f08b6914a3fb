"""The control socket's server: the daemon's end, on its event loop.

Who may connect is decided twice: the socket file is mode 0600 (0660 with a configured
group), and each connection's ``SO_PEERCRED`` must be root, the daemon's own uid, or a member
of that group. The second check is defence in depth, for a directory or mode set wrong.

The server never lets one client hurt it: lines are bounded, idle connections time out,
clients are capped, and a failing handler costs only that connection. The protocol itself is
``appliance.control.protocol``.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import pwd
import shutil
import socket
import stat
import struct
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_common.lifecycle import TaskSet

from .protocol import (
    MAX_LINE,
    BadCommand,
    ControlCommand,
    ControlError,
    ControlSocketInUse,
    parse_command,
)

__all__ = ["ControlHandler", "ControlServer", "PeerCredentials", "peer_credentials"]

log = logging.getLogger(__name__)

_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes including the terminating NUL

# The daemon's callback: returns the fields of the success reply, raises BadCommand to refuse.
ControlHandler = Callable[[ControlCommand], Awaitable[Mapping[str, Any]]]


# --- peer credentials -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerCredentials:
    """Who is on the other end of a Unix socket, as the kernel saw them at connect time."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket | Any) -> PeerCredentials:
    """Read ``SO_PEERCRED`` from a connected Unix socket."""
    fmt = "3i"
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(fmt))
    pid, uid, gid = struct.unpack(fmt, raw)
    return PeerCredentials(pid, uid, gid)


def _resolve_gid(group: int | str | None) -> int | None:
    if group is None or isinstance(group, int):
        return group
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ControlError(f"control socket group {group!r} does not exist") from None


def _in_group(uid: int, gid: int) -> bool:
    try:
        name = pwd.getpwuid(uid).pw_name
        return name in grp.getgrgid(gid).gr_mem
    except KeyError:
        return False


# --- the server -------------------------------------------------------------------------------


class ControlServer:
    """Serves the control socket on the running event loop.

    ``handler`` receives each valid command and returns the reply's fields; raising
    ``BadCommand`` sends ``{"ok": false, "error": ...}`` and keeps the connection, any other
    exception is logged, answered with "internal error" and closes that connection only.

    ``group`` (name or gid) makes the socket 0660 and admits that group's members; without
    it the socket is 0600. ``peer_allowed`` replaces the default credential check.
    ``close()`` gives handlers in progress ``close_grace`` seconds, then cancels them.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        handler: ControlHandler,
        *,
        group: int | str | None = None,
        max_line: int = MAX_LINE,
        idle_timeout: float = 30.0,
        max_clients: int = 8,
        close_grace: float = 2.0,
        peer_allowed: Callable[[PeerCredentials], bool] | None = None,
    ) -> None:
        self._path = Path(path)
        self._handler = handler
        self._gid = _resolve_gid(group)
        self._max_line = max_line
        self._idle_timeout = idle_timeout
        self._max_clients = max_clients
        self._peer_allowed = peer_allowed or self._default_peer_allowed
        self._server: asyncio.Server | None = None
        self._inode: tuple[int, int] | None = None
        self._connections = TaskSet("control socket")
        #: Each open connection's task and writer (to end it at close).
        self._clients: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._close_grace = close_grace

    @property
    def path(self) -> Path:
        """The socket's path."""
        return self._path

    async def start(self) -> None:
        """Bind the socket (replacing a stale one) and start accepting connections."""
        if self._server is not None:
            return
        sock = self._bind()
        try:
            self._server = await asyncio.start_unix_server(
                self._accept, sock=sock, limit=self._max_line
            )
        except BaseException:
            sock.close()
            self._unlink()
            raise
        log.info("control socket listening on %s", self._path)

    async def close(self) -> None:
        """Stop listening, end open connections, remove the socket file. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # End connections by closing their transports, so each reader sees EOF and its task
        # finishes on its own; cancel only what a slow handler still holds after a grace.
        clients = dict(self._clients)
        for writer in clients.values():
            writer.transport.abort()
        if clients:
            await asyncio.wait(clients, timeout=self._close_grace)
        await self._connections.close()
        if server is not None:
            await server.wait_closed()
        self._unlink()

    # --- binding ----------------------------------------------------------------------------

    def _bind(self) -> socket.socket:
        self._clear_stale()
        # Bind inside a private (0700) directory, set the mode, then rename into place: the
        # socket is never reachable with the umask's default permissions, and no process-wide
        # umask change is needed (other threads may be creating files).
        private = Path(tempfile.mkdtemp(prefix=".ctl-", dir=self._path.parent))
        temp_path = private / "s"
        _check_length(temp_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(os.fspath(temp_path))
            # A new file already has our effective group; chown only for another group
            # (the unit's seccomp filter denies chown, so the common case must not need it).
            if self._gid is not None and self._gid != os.getegid():
                os.chown(temp_path, -1, self._gid)
            os.chmod(temp_path, 0o660 if self._gid is not None else 0o600)
            os.replace(temp_path, self._path)
            st = os.stat(self._path)
            self._inode = (st.st_dev, st.st_ino)
            sock.listen(16)
        except BaseException:
            sock.close()
            raise
        finally:
            shutil.rmtree(private, ignore_errors=True)
        return sock

    def _clear_stale(self) -> None:
        _check_length(self._path)
        try:
            st = os.lstat(self._path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ControlSocketInUse(f"{self._path} exists and is not a socket; not replacing it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(os.fspath(self._path))
        except (ConnectionRefusedError, FileNotFoundError):
            log.info("removing stale control socket %s", self._path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            return
        except OSError as exc:
            raise ControlSocketInUse(f"{self._path}: cannot probe ({exc})") from exc
        finally:
            probe.close()
        raise ControlSocketInUse(f"another daemon is listening on {self._path}")

    def _unlink(self) -> None:
        # Only remove the file if it is still ours: a successor may have bound the path.
        if self._inode is None:
            return
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(self._path)
            if (st.st_dev, st.st_ino) == self._inode:
                os.unlink(self._path)
        self._inode = None

    # --- connections --------------------------------------------------------------------------

    def _default_peer_allowed(self, peer: PeerCredentials) -> bool:
        if peer.uid in (0, os.geteuid()):
            return True
        if self._gid is None:
            return False
        return peer.gid == self._gid or _in_group(peer.uid, self._gid)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.spawn(self._serve(reader, writer), name="control-connection")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients[task] = writer
        try:
            if len(self._clients) > self._max_clients:
                await _reply(writer, {"ok": False, "error": "busy: too many connections"})
                return
            peer = peer_credentials(writer.get_extra_info("socket"))
            if not self._peer_allowed(peer):
                log.warning("control socket: refused uid=%d gid=%d pid=%d", *_ids(peer))
                await _reply(writer, {"ok": False, "error": "permission denied"})
                return
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to tell it
        finally:
            self._clients.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                async with asyncio.timeout(self._idle_timeout):
                    line = await reader.readline()
            except TimeoutError:
                return
            except ValueError:  # the line outgrew the stream's limit
                await _reply(writer, {"ok": False, "error": f"line over {self._max_line} bytes"})
                return
            if not line.strip():
                if not line:
                    return  # EOF
                continue
            try:
                command = parse_command(line)
            except BadCommand as exc:
                await _reply(writer, {"ok": False, "error": str(exc)})
                return
            if not await self._dispatch(command, writer):
                return

    async def _dispatch(self, command: ControlCommand, writer: asyncio.StreamWriter) -> bool:
        """Run the handler and reply; return whether the connection may continue."""
        try:
            result = dict(await self._handler(command))
            payload = json.dumps({**result, "ok": True}).encode() + b"\n"
        except BadCommand as exc:
            await _reply(writer, {"ok": False, "error": str(exc)})
            return True
        except Exception:
            log.exception("control socket: handler failed on %r", command)
            await _reply(writer, {"ok": False, "error": "internal error"})
            return False
        writer.write(payload)
        await writer.drain()
        return True


def _ids(peer: PeerCredentials) -> tuple[int, int, int]:
    return peer.uid, peer.gid, peer.pid


async def _reply(writer: asyncio.StreamWriter, payload: Mapping[str, Any]) -> None:
    with contextlib.suppress(ConnectionError):
        writer.write(json.dumps(payload).encode() + b"\n")
        await writer.drain()


def _check_length(path: Path) -> None:
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise ControlError(f"socket path too long for AF_UNIX ({_SUN_PATH_MAX} bytes max): {path}")
