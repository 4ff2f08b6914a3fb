"""The browser client's PROTOCOL block says what the server's protocol module says."""

from __future__ import annotations

import re
from pathlib import Path

from edge_sfu.signaling import protocol as p

TRACKS_JS = Path(p.__file__).resolve().parent.parent / "web" / "static" / "edge-video-tracks.js"


def _protocol_block() -> str:
    text = TRACKS_JS.read_text()
    start = text.index("export const PROTOCOL = Object.freeze({")
    return text[start : text.index("\n});", start)]


def _section(block: str, name: str) -> dict[str, str]:
    body = re.search(rf"\n  {name}: Object\.freeze\(\{{(.*?)\n  \}}\)", block, re.S)
    assert body is not None, name
    return dict(re.findall(r"(\w+): '?([^',]+)'?,", body.group(1)))


def _top(block: str) -> dict[str, str]:
    return dict(re.findall(r"\n  (\w+): '?([^',\n]+)'?,", block))


def test_version_subprotocol_and_limits_match():
    top = _top(_protocol_block())
    assert int(top["VERSION"]) == p.PROTOCOL_VERSION
    assert top["SUBPROTOCOL"] == p.SUBPROTOCOL
    assert int(top["MAX_TRACKS_PER_MESSAGE"]) == p.MAX_TRACKS_PER_MESSAGE
    assert int(top["MAX_CLIENT_ID"]) == p.MAX_CLIENT_ID
    assert int(top["MAX_DIMENSION"]) == p.MAX_DIMENSION
    assert int(top["MAX_LAYERS"]) == p.MAX_LAYERS


def test_the_server_messages_the_client_handles_are_the_servers():
    server = _section(_protocol_block(), "SERVER")
    assert set(server.values()) <= p.SERVER_MESSAGE_TYPES
    assert p.MSG_SEND_LAYERS in server.values()


def test_client_message_types_are_the_servers():
    client = _section(_protocol_block(), "CLIENT")
    assert set(client.values()) == p.CLIENT_MESSAGE_TYPES


def test_error_codes_match():
    codes = {name: int(value) for name, value in _section(_protocol_block(), "CODE").items()}
    assert codes == {name: getattr(p, name) for name in codes}
