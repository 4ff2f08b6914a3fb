"""Where logs go: the journal (with structured fields) under systemd, stderr otherwise."""

from __future__ import annotations

import io
import logging
import sys
from typing import Any

import pytest

from appliance.service_manager import (
    StructuredFormatter,
    configure_logging,
    running_under_systemd,
)


def ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_edge_appliance_handler", 0)]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"INVOCATION_ID": "0123abcd"}, True),
        ({"JOURNAL_STREAM": "8:12345"}, True),
        ({"JOURNAL_STREAM": ""}, False),
    ],
)
def test_running_under_systemd(env: dict[str, str], expected: bool) -> None:
    assert running_under_systemd(env) is expected


def test_outside_systemd_logs_go_to_stderr_with_fields() -> None:
    stream = io.StringIO()
    assert configure_logging(logging.DEBUG, env={}, stream=stream) == "stderr"
    logging.getLogger("appliance.test").info(
        "joined %s", "Boardroom", extra={"ROOM_SID": "RM1", "PARTICIPANT_SID": "PA2", "x": 1}
    )
    line = stream.getvalue().strip()
    assert "INFO appliance.test: joined Boardroom" in line
    assert line.endswith("PARTICIPANT_SID=PA2 ROOM_SID=RM1")  # lower-case extras are not fields
    assert not line.startswith("<")


def test_configuring_twice_replaces_our_handler() -> None:
    configure_logging(env={}, stream=io.StringIO())
    configure_logging(env={}, stream=io.StringIO())
    assert len(ours()) == 1


def test_under_systemd_logs_go_to_the_journal_with_structured_fields() -> None:
    pytest.importorskip("systemd.journal")
    assert configure_logging(env={"INVOCATION_ID": "abc"}, identifier="edge-test") == "journal"
    (handler,) = ours()
    sent: list[tuple[str, dict[str, Any]]] = []

    def capture(message: str, /, **fields: Any) -> None:
        sent.append((message, fields))

    handler.send = capture  # type: ignore[attr-defined]
    logging.getLogger("appliance.kiosk").warning(
        "left %s", "Boardroom", extra={"ROOM_SID": "RM1", "PARTICIPANT_SID": "PA2"}
    )
    ((message, fields),) = sent
    assert message == "left Boardroom"
    assert fields["ROOM_SID"] == "RM1"
    assert fields["PARTICIPANT_SID"] == "PA2"
    assert fields["SYSLOG_IDENTIFIER"] == "edge-test"
    assert fields["PRIORITY"] == "4"
    assert fields["LOGGER"] == "appliance.kiosk"


def test_journal_handler_without_a_journal_drops_silently() -> None:
    # No journald socket on this machine: records must vanish, not raise.
    pytest.importorskip("systemd.journal")
    configure_logging(env={"JOURNAL_STREAM": "1:2"})
    logging.getLogger("appliance.test").error("nobody reads this", extra={"ROOM_SID": "RM1"})


def test_under_systemd_without_systemd_python_uses_priority_prefixes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "systemd.journal", None)
    stream = io.StringIO()
    assert configure_logging(env={"INVOCATION_ID": "abc"}, stream=stream) == "stderr"
    logging.getLogger("appliance.test").error("bad", extra={"ROOM_SID": "RM1"})
    assert stream.getvalue() == "<3>ERROR appliance.test: bad ROOM_SID=RM1\n"


@pytest.mark.parametrize(
    ("level", "prefix"),
    [(logging.DEBUG, "<7>"), (logging.INFO, "<6>"), (logging.WARNING, "<4>"), (50, "<2>")],
)
def test_syslog_priorities(level: int, prefix: str) -> None:
    formatter = StructuredFormatter("%(message)s", syslog_prefix=True)
    record = logging.LogRecord("n", level, __file__, 1, "m", None, None)
    assert formatter.format(record) == f"{prefix}m"
