"""The status page's operator tools and invite revocation, through the real admin app."""

from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import TestClient

from edge_common.logbuffer import LogBuffer, redact
from tests.support.provisioning_app import get_csrf, post_form
from tests.support.provisioning_backend import HandWrittenTestBackend

ACTIONS = [
    ("/admin/status/rooms/end", {"room": "RM1"}),
    ("/admin/status/rooms/remove", {"room": "RM1", "participant": "PA2"}),
    ("/admin/status/speaker-test", {}),
    ("/admin/invites/revoke", {"invite_id": "x"}),
    ("/admin/recordings/delete", {"sid": "RT" + "0" * 32}),
]


async def test_status_page_has_the_tool_sections(signed_in: TestClient) -> None:
    html = await (await signed_in.get("/admin/status")).text()
    for section in ("kiosk", "room-actions", "doctor", "camera", "audio", "logs"):
        assert f'id="{section}"' in html, section
    assert "status_tools.js" in html


async def test_doctor_rows_as_json(signed_in: TestClient) -> None:
    rows = (await (await signed_in.get("/admin/status/doctor")).json())["rows"]
    assert rows[0] == {
        "part": "camera",
        "backend": "synthetic",
        "ok": True,
        "detail": "testsrc2 <b>pattern</b>",
    }
    assert rows[1]["ok"] is False


async def test_snapshot_says_why_then_gives_an_image(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    resp = await signed_in.get("/admin/status/snapshot?format=png")
    assert resp.status == 409 and "No camera layer" in (await resp.json())["message"]
    backend.joined = True
    resp = await signed_in.get("/admin/status/snapshot?format=png")
    assert resp.status == 200 and resp.content_type == "image/png"
    assert (await resp.read()).startswith(b"\x89PNG")
    resp = await signed_in.get("/admin/status/snapshot?format=gif")
    assert resp.status == 400


async def test_mic_level_and_speaker_tone(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    level = await (await signed_in.get("/admin/status/levels")).json()
    assert level["available"] is False and level["reason"]
    backend.joined = True
    level = await (await signed_in.get("/admin/status/levels")).json()
    assert level == {"available": True, "peak": 12000, "reason": "", "muted": False}
    token = await get_csrf(signed_in, "/admin/status")
    resp = await signed_in.post(
        "/admin/status/speaker-test",
        data={"csrf": token},
        headers={"Accept": "application/json"},
    )
    assert (await resp.json())["ok"] is True and backend.tones == 1


async def test_logs_filter_by_level_and_mask_secrets(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    backend.logger.info("joined <script>alert(1)</script> password=hunter2")
    backend.logger.warning("camera slow")
    backend.logger.debug("noise")
    lines = (await (await signed_in.get("/admin/status/logs?level=INFO")).json())["lines"]
    assert [line["level"] for line in lines] == ["INFO", "WARNING"]
    assert lines[0]["message"] == "joined <script>alert(1)</script> password=[redacted]"
    lines = (await (await signed_in.get("/admin/status/logs?level=warning")).json())["lines"]
    assert [line["message"] for line in lines] == ["camera slow"]
    lines = (await (await signed_in.get("/admin/status/logs?level=DEBUG")).json())["lines"]
    assert len(lines) == 3
    assert (await signed_in.get("/admin/status/logs?level=LOUD")).status == 400


async def test_end_room_and_remove_participant(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    resp = await post_form(
        signed_in,
        "/admin/status/rooms/remove",
        {"room": "RM1", "participant": "PA2"},
        "/admin/status",
    )
    assert resp.status == 200 and "removed" in await resp.text()
    assert backend.removed == [("RM1", "PA2")]
    resp = await post_form(
        signed_in,
        "/admin/status/rooms/remove",
        {"room": "RM1", "participant": "PA2"},
        "/admin/status",
    )
    assert resp.status == 404
    token = await get_csrf(signed_in, "/admin/status")
    resp = await signed_in.post(
        "/admin/status/rooms/end",
        data={"csrf": token, "room": "RM1"},
        headers={"Accept": "application/json"},
    )
    assert (await resp.json())["ok"] is True and backend.ended == ["RM1"]
    resp = await post_form(signed_in, "/admin/status/rooms/end", {"room": "<x>"}, "/admin/status")
    assert resp.status == 404 and backend.ended == ["RM1"]


async def test_invites_are_listed_and_revoked(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    resp = await post_form(
        signed_in, "/admin/invites", {"room": "lobby", "ttl": "60", "guests": "3"}, "/admin/invites"
    )
    html = await resp.text()
    (invite_id,) = backend.invites
    assert f'data-invite="{invite_id}"' in html and "0 of 3 guests" in html
    resp = await post_form(
        signed_in, "/admin/invites/revoke", {"invite_id": invite_id}, "/admin/invites"
    )
    html = await resp.text()
    assert resp.status == 200 and "Invite revoked" in html and "revoked</span>" in html
    assert backend.invites[invite_id].revoked
    resp = await post_form(
        signed_in, "/admin/invites/revoke", {"invite_id": "nope"}, "/admin/invites"
    )
    assert resp.status == 404


@pytest.mark.parametrize(("path", "data"), ACTIONS)
@pytest.mark.parametrize("token", [None, "0" * 64])
async def test_actions_refused_without_csrf(
    signed_in: TestClient,
    backend: HandWrittenTestBackend,
    path: str,
    data: dict[str, str],
    token: str | None,
) -> None:
    form = dict(data) if token is None else {**data, "csrf": token}
    resp = await signed_in.post(path, data=form)
    assert resp.status == 403
    assert backend.removed == [] and backend.ended == [] and backend.tones == 0


def test_redact_masks_credentials() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmNkZWYifQ.c2lnbmF0dXJlMTIz"
    text = (
        f"token={jwt} Authorization: Basic dXNlcjpwYXNzd29yZA== "
        "url=https://user:pw@example.org/x api_key_secret: 'abc def' ok=1"
    )
    out = redact(text)
    assert jwt not in out and "dXNlcjpwYXNzd29yZA" not in out and ":pw@" not in out
    assert "abc def" not in out and "ok=1" in out
    assert redact(f"invite {jwt} made") == "invite [redacted] made"
    assert redact("enter claim code GHRN-Q7Y8-UTJD-T87G now") == "enter claim code [redacted] now"


def test_log_buffer_is_bounded_and_keeps_bad_records() -> None:
    buffer = LogBuffer(capacity=3)
    logger = logging.getLogger("test.logbuffer")
    logger.propagate = False  # the test runner's own capture would raise on the bad record
    logger.addHandler(buffer)
    try:
        for i in range(5):
            logger.warning("line %d", i)
        logger.warning("bad %d format", "x")
    finally:
        logger.removeHandler(buffer)
    assert [line.message for line in buffer.lines()] == ["line 3", "line 4", "bad %d format"]
    assert [line.message for line in buffer.lines(limit=1)] == ["bad %d format"]
    with pytest.raises(ValueError):
        buffer.lines("LOUD")
