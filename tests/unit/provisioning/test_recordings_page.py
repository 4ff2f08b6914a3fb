"""The recordings page lists recordings and compositions with play, download and delete."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from provisioning.backend import MediaInfo
from tests.support.provisioning_app import post_form
from tests.support.provisioning_backend import HandWrittenTestBackend

REC = "RT" + "1" * 32
COMP = "CJ" + "2" * 32


def stock(backend: HandWrittenTestBackend) -> None:
    backend.media[REC] = MediaInfo(
        REC, "recording", "lobby", "<b>camera</b>", "completed", "2026-11-29T10:00:00Z", 12,
        2048, f"/v1/Media/{REC}?Expires=1&Signature=a&b",
    )  # fmt: skip
    backend.media[COMP] = MediaInfo(
        COMP, "composition", "lobby", "mp4 640x480", "processing", "2026-11-29T10:01:00Z", None,
        0,
    )  # fmt: skip


async def test_recordings_are_listed_with_play_download_and_delete(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    stock(backend)
    html = await (await signed_in.get("/admin/recordings")).text()
    assert f'data-media="{REC}"' in html and f'data-media="{COMP}"' in html
    assert "&lt;b&gt;camera&lt;/b&gt;" in html and "<b>camera" not in html  # escaped
    assert f'href="/v1/Media/{REC}?Expires=1&amp;Signature=a&amp;b"' in html
    assert ">Play</a>" in html and " download>Download</a>" in html
    # a composition still being made has no link and no delete button
    item = html.split(f'data-media="{COMP}"', 1)[1].split("</li>", 1)[0]
    assert "Play" not in item and "Delete" not in item
    resp = await post_form(signed_in, "/admin/recordings/delete", {"sid": REC}, "/admin/recordings")
    assert resp.status == 200 and f"{REC} deleted" in await resp.text()
    assert backend.media[REC].status == "deleted"
    again = await post_form(
        signed_in, "/admin/recordings/delete", {"sid": REC}, "/admin/recordings"
    )
    assert again.status == 400
    bad = await post_form(
        signed_in, "/admin/recordings/delete", {"sid": "<x>"}, "/admin/recordings"
    )
    assert bad.status == 400


async def test_an_empty_recordings_page(signed_in: TestClient) -> None:
    html = await (await signed_in.get("/admin/recordings")).text()
    assert "Nothing has been recorded yet." in html
