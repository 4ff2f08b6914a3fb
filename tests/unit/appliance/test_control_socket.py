"""The control socket: commands reach the handler, bad input is refused, access is checked."""

from __future__ import annotations

import asyncio
import grp
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from appliance.control.client import press, send_command, status
from appliance.control.protocol import (
    BadCommand,
    CommandRejected,
    ControlCommand,
    ControlError,
    ControlSocketInUse,
    DaemonNotRunning,
    PressCommand,
    StatusCommand,
    default_socket_path,
    encode_command,
    parse_command,
)
from appliance.control.server import ControlServer, PeerCredentials

REPO = Path(__file__).resolve().parents[3]


class Recorder:
    """A handler that records commands and answers like a small kiosk."""

    def __init__(self) -> None:
        self.commands: list[ControlCommand] = []

    async def __call__(self, command: ControlCommand) -> Mapping[str, Any]:
        self.commands.append(command)
        if isinstance(command, StatusCommand):
            return {"state": "idle", "status": "Press to join"}
        return {"state": "joining" if command.button == "join" else "in_call"}


@asynccontextmanager
async def serving(*args: Any, **kwargs: Any) -> AsyncIterator[ControlServer]:
    """A started ``ControlServer(*args, **kwargs)``, closed when the block ends."""
    srv = ControlServer(*args, **kwargs)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 107 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="ctl-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def server(short_dir: Path, recorder: Recorder) -> AsyncIterator[ControlServer]:
    async with serving(default_socket_path(short_dir), recorder, idle_timeout=5.0) as srv:
        yield srv


async def raw_exchange(path: Path, payload: bytes, *, timeout: float = 5.0) -> list[bytes]:
    """Send raw bytes, then read every line until the server closes the connection."""
    reader, writer = await asyncio.open_unix_connection(os.fspath(path), limit=1 << 20)
    try:
        writer.write(payload)
        await writer.drain()
        lines = []
        async with asyncio.timeout(timeout):
            while line := await reader.readline():
                lines.append(line)
        return lines
    finally:
        writer.close()


async def assert_still_serving(path: Path) -> None:
    reply = await asyncio.to_thread(status, path)
    assert reply["state"] == "idle"


# --- the happy path ----------------------------------------------------------------------------


async def test_press_and_status_reach_the_handler(
    server: ControlServer, recorder: Recorder
) -> None:
    assert await asyncio.to_thread(press, server.path, "join") == {"state": "joining"}
    assert await asyncio.to_thread(press, server.path, "mute") == {"state": "in_call"}
    await asyncio.to_thread(press, server.path, "join", long=True)
    assert await asyncio.to_thread(status, server.path) == {
        "state": "idle",
        "status": "Press to join",
    }
    assert recorder.commands == [
        PressCommand("join"),
        PressCommand("mute"),
        PressCommand("join", long=True),
        StatusCommand(),
    ]


async def test_several_commands_on_one_connection(server: ControlServer) -> None:
    reader, writer = await asyncio.open_unix_connection(os.fspath(server.path))
    try:
        for _ in range(3):
            writer.write(b'{"cmd": "status"}\n\n')  # blank lines are tolerated
            await writer.drain()
            async with asyncio.timeout(5):
                reply = json.loads(await reader.readline())
            assert reply == {"ok": True, "state": "idle", "status": "Press to join"}
    finally:
        writer.close()


def test_commands_round_trip_through_the_wire_form() -> None:
    for command in (PressCommand("join"), PressCommand("join", True), PressCommand("mute")):
        assert parse_command(encode_command(command)) == command
    assert parse_command(encode_command(StatusCommand())) == StatusCommand()


# --- permissions ---------------------------------------------------------------------------------


async def test_socket_is_private_by_default(server: ControlServer) -> None:
    st = os.lstat(server.path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()
    assert [p.name for p in server.path.parent.iterdir()] == ["control.sock"]  # no temp left


def _other_group() -> int | None:
    if os.geteuid() != 0:
        return None  # only root may give a file to a group it is not in
    return next((g.gr_gid for g in grp.getgrall() if g.gr_gid != os.getegid()), None)


@pytest.mark.parametrize("which", ["own", "other"])
async def test_group_makes_the_socket_group_accessible(
    short_dir: Path, recorder: Recorder, which: str
) -> None:
    gid = os.getegid() if which == "own" else _other_group()
    if gid is None:
        pytest.skip("needs root and a second group")
    group: int | str = grp.getgrgid(gid).gr_name if which == "own" else gid
    async with serving(short_dir / "c.sock", recorder, group=group) as srv:
        st = os.lstat(srv.path)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == gid
        await assert_still_serving(srv.path)


def test_unknown_group_is_a_clear_error(short_dir: Path, recorder: Recorder) -> None:
    with pytest.raises(ControlError, match="does not exist"):
        ControlServer(short_dir / "c.sock", recorder, group="no-such-group-xyz")


async def test_peer_credentials_are_checked(short_dir: Path, recorder: Recorder) -> None:
    seen: list[PeerCredentials] = []

    def nobody_allowed(peer: PeerCredentials) -> bool:
        seen.append(peer)
        return False

    async with serving(short_dir / "c.sock", recorder, peer_allowed=nobody_allowed) as srv:
        with pytest.raises(CommandRejected, match="permission denied"):
            await asyncio.to_thread(press, srv.path, "join")
    assert recorder.commands == []
    assert seen[0].uid == os.geteuid() and seen[0].pid == os.getpid()


def _as_nobody(path: Path) -> subprocess.CompletedProcess[str]:
    """Run the real client as uid/gid 65534 with the system Python (the venv is under /root)."""
    code = (
        "import sys\n"
        "from appliance.control.client import status\n"
        "from appliance.control.protocol import ControlError\n"
        "try:\n"
        f"    print(status({str(path)!r}))\n"
        "except ControlError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    return subprocess.run(
        ["/usr/bin/python3", "-c", code],
        cwd=REPO,
        user=65534,
        group=65534,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


needs_root_and_system_python = pytest.mark.skipif(
    os.geteuid() != 0 or not os.access("/usr/bin/python3", os.X_OK),
    reason="needs root (to run a client as another uid) and /usr/bin/python3",
)


@needs_root_and_system_python
async def test_another_user_is_refused_by_the_file_mode(server: ControlServer) -> None:
    os.chmod(server.path.parent, 0o755)
    result = await asyncio.to_thread(_as_nobody, server.path)
    assert "ControlError permission denied on" in result.stdout, result
    await assert_still_serving(server.path)


@needs_root_and_system_python
async def test_another_user_is_refused_by_peer_credentials(
    server: ControlServer, recorder: Recorder
) -> None:
    # A mode set wrong (0666) must still not let another user in.
    os.chmod(server.path.parent, 0o755)
    os.chmod(server.path, 0o666)
    result = await asyncio.to_thread(_as_nobody, server.path)
    assert "CommandRejected permission denied" in result.stdout, result
    assert recorder.commands == []
    await assert_still_serving(server.path)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"hello", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b'"press"', "JSON object"),
        (b"{}", "unknown command None"),
        (b'{"cmd": "reboot"}', "unknown command 'reboot'"),
        (b'{"cmd": "press"}', '"button"'),
        (b'{"cmd": "press", "button": "eject"}', '"button"'),
        (b'{"cmd": "press", "button": ["join"]}', '"button"'),
        (b'{"cmd": "press", "button": "join", "long": "yes"}', '"long"'),
        (b'{"cmd": "press", "button": "mute", "long": true}', "only the join button"),
        (b'{"cmd": "press", "button": "join", "force": 1}', "unknown field(s): force"),
        (b'{"cmd": "status", "verbose": true}', "unknown field(s): verbose"),
    ],
)
def test_parse_refuses_bad_commands(line: bytes, message: str) -> None:
    with pytest.raises(BadCommand) as info:
        parse_command(line)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [
        b"garbage\n",
        b'{"cmd": "self-destruct"}\n',
        b"\x00\x01\x02\xff\n",
        b'{"cmd": "status"\n',
    ],
)
async def test_bad_input_gets_an_error_reply_and_the_connection_is_closed(
    server: ControlServer, recorder: Recorder, payload: bytes
) -> None:
    # The valid command after the bad one is never read: the connection ends at the error.
    lines = await raw_exchange(server.path, payload + b'{"cmd": "status"}\n')
    assert len(lines) == 1
    reply = json.loads(lines[0])
    assert reply["ok"] is False and reply["error"]
    assert recorder.commands == []
    await assert_still_serving(server.path)


async def test_huge_line_is_refused(server: ControlServer, recorder: Recorder) -> None:
    lines = await raw_exchange(server.path, b"x" * 200_000 + b"\n")
    assert len(lines) == 1
    assert json.loads(lines[0]) == {"ok": False, "error": "line over 4096 bytes"}
    await assert_still_serving(server.path)


async def test_huge_json_command_without_newline_is_refused(server: ControlServer) -> None:
    payload = b'{"cmd": "status", "pad": "' + b"a" * 10_000
    lines = await raw_exchange(server.path, payload)
    assert json.loads(lines[0])["error"] == "line over 4096 bytes"
    await assert_still_serving(server.path)


async def test_handler_refusal_keeps_the_connection(short_dir: Path) -> None:
    async def refuse_press(command: ControlCommand) -> Mapping[str, Any]:
        if isinstance(command, PressCommand):
            raise BadCommand("this unit is a hub: it has no buttons")
        return {"state": "hub"}

    async with serving(short_dir / "c.sock", refuse_press) as srv:
        reader, writer = await asyncio.open_unix_connection(os.fspath(srv.path))
        writer.write(b'{"cmd": "press", "button": "join"}\n{"cmd": "status"}\n')
        await writer.drain()
        async with asyncio.timeout(10):
            replies = [json.loads(await reader.readline()) for _ in range(2)]
        writer.close()
    assert replies == [
        {"ok": False, "error": "this unit is a hub: it has no buttons"},
        {"ok": True, "state": "hub"},
    ]


async def test_handler_refusal_is_a_clear_client_error(short_dir: Path) -> None:
    async def refuse(command: ControlCommand) -> Mapping[str, Any]:
        raise BadCommand("not a kiosk")

    async with serving(short_dir / "c.sock", refuse) as srv:
        with pytest.raises(CommandRejected, match="not a kiosk"):
            await asyncio.to_thread(press, srv.path, "join")


async def test_handler_crash_costs_only_that_connection(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def flaky(command: ControlCommand) -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bug")
        if calls == 2:
            return {"not_json": object()}
        return {"state": "idle"}

    async with serving(short_dir / "c.sock", flaky) as srv:
        for _ in range(2):
            with pytest.raises(CommandRejected, match="internal error"):
                await asyncio.to_thread(status, srv.path)
        assert await asyncio.to_thread(status, srv.path) == {"state": "idle"}
    assert "handler failed" in caplog.text


async def test_too_many_clients_are_turned_away(short_dir: Path, recorder: Recorder) -> None:
    srv = ControlServer(short_dir / "c.sock", recorder, max_clients=2, idle_timeout=10)
    await srv.start()
    idle = []
    try:
        for _ in range(2):
            idle.append(await asyncio.open_unix_connection(os.fspath(srv.path)))
        await asyncio.sleep(0.1)  # let the server accept them
        with pytest.raises(CommandRejected, match="busy"):
            await asyncio.to_thread(status, srv.path)
        for _, writer in idle:
            writer.close()
        # once they are gone, clients are served again
        for _ in range(50):
            try:
                await asyncio.to_thread(status, srv.path)
                break
            except CommandRejected:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("still busy after the idle clients left")
    finally:
        await srv.close()


async def test_idle_connections_time_out(short_dir: Path, recorder: Recorder) -> None:
    async with serving(short_dir / "c.sock", recorder, idle_timeout=0.2) as srv:
        reader, writer = await asyncio.open_unix_connection(os.fspath(srv.path))
        async with asyncio.timeout(10):
            assert await reader.read() == b""  # closed by the server
        writer.close()


# --- the client's errors ---------------------------------------------------------------------


def test_client_says_clearly_when_the_daemon_is_not_running(short_dir: Path) -> None:
    with pytest.raises(DaemonNotRunning, match=r"not running: no .*control\.sock"):
        press(default_socket_path(short_dir), "join")


def test_client_says_clearly_when_the_socket_is_stale(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(os.fspath(path))  # bound, never listening: what a crashed daemon leaves
    with pytest.raises(DaemonNotRunning, match="stale"):
        status(path)
    assert isinstance(DaemonNotRunning("x"), ConnectionError)


async def test_client_times_out_on_a_silent_daemon(short_dir: Path) -> None:
    release = asyncio.Event()

    async def slow(command: ControlCommand) -> Mapping[str, Any]:
        await release.wait()
        return {}

    srv = ControlServer(short_dir / "c.sock", slow)
    await srv.start()
    try:
        with pytest.raises(ControlError, match=r"did not answer within 0\.3 s"):
            await asyncio.to_thread(send_command, srv.path, StatusCommand(), timeout=0.3)
    finally:
        release.set()
        await srv.close()


# --- lifecycle ---------------------------------------------------------------------------------


async def test_stale_socket_is_replaced_at_start(short_dir: Path, recorder: Recorder) -> None:
    path = short_dir / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(os.fspath(path))
    async with serving(path, recorder):
        await assert_still_serving(path)


async def test_a_running_daemon_is_not_displaced(server: ControlServer, recorder: Recorder) -> None:
    second = ControlServer(server.path, recorder)
    with pytest.raises(ControlSocketInUse, match="another daemon"):
        await second.start()
    await assert_still_serving(server.path)


async def test_a_file_that_is_not_a_socket_is_not_replaced(
    short_dir: Path, recorder: Recorder
) -> None:
    path = short_dir / "control.sock"
    path.write_text("precious")
    with pytest.raises(ControlSocketInUse, match="not a socket"):
        await ControlServer(path, recorder).start()
    assert path.read_text() == "precious"


def test_too_long_a_path_is_a_clear_error(short_dir: Path, recorder: Recorder) -> None:
    path = short_dir / ("d" * 120) / "control.sock"
    with pytest.raises(ControlError, match="too long"):
        asyncio.run(ControlServer(path, recorder).start())


async def test_close_removes_the_socket_and_ends_open_connections(
    short_dir: Path, recorder: Recorder
) -> None:
    srv = ControlServer(short_dir / "c.sock", recorder, idle_timeout=60)
    await srv.start()
    reader, writer = await asyncio.open_unix_connection(os.fspath(srv.path))
    await asyncio.sleep(0.05)
    async with asyncio.timeout(10):
        await srv.close()
        assert await reader.read() == b""
    writer.close()
    assert not srv.path.exists()
    await srv.close()  # idempotent
    with pytest.raises(DaemonNotRunning):
        await asyncio.to_thread(status, srv.path)


async def test_close_cancels_a_stuck_handler_after_the_grace(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    entered = asyncio.Event()
    cancelled = False

    async def stuck(command: ControlCommand) -> Mapping[str, Any]:
        nonlocal cancelled
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled = True
            raise
        return {}

    srv = ControlServer(short_dir / "c.sock", stuck, close_grace=0.2)
    await srv.start()
    reader, writer = await asyncio.open_unix_connection(os.fspath(srv.path))
    writer.write(b'{"cmd": "status"}\n')
    async with asyncio.timeout(10):
        await entered.wait()
        await srv.close()
        assert await reader.read() == b""
    writer.close()
    assert cancelled
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_close_leaves_a_successors_socket_alone(short_dir: Path, recorder: Recorder) -> None:
    path = short_dir / "c.sock"
    first = ControlServer(path, recorder)
    await first.start()
    os.unlink(path)  # e.g. an operator cleaned up by hand
    second = ControlServer(path, recorder)
    await second.start()
    try:
        await first.close()
        assert path.exists()
        await assert_still_serving(path)
    finally:
        await second.close()
