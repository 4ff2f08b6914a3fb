"""The status summary (control socket, admin status page) names the speaker and each level."""

from __future__ import annotations

from pathlib import Path

from appliance.config import parse_settings, save_config
from appliance.state import DaemonState
from appliance.status import status_summary
from edge_sfu.context import SfuContext
from edge_sfu.identity import load_or_create_identity
from edge_sfu.keys import KeyStore


async def test_speaker_and_network_quality_in_the_summary(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    settings = parse_settings({})
    save_config(config, settings)
    state = DaemonState.open(settings, config, tmp_path / "data")
    identity = load_or_create_identity(tmp_path / "sfu")
    state.sfu = SfuContext.open(
        tmp_path / "sfu", identity, KeyStore(tmp_path / "sfu", builtin=identity.signing_key)
    )
    try:
        ann = await state.sfu.rooms.connect("ann", "lobby")
        bob = await state.sfu.rooms.connect("bob", "lobby")
        (room,) = status_summary(state)["rooms"]
        assert room["dominant_speaker"] is None  # before the SFU said anything
        assert {p["network_quality_level"] for p in room["participants"]} == {None}

        state.sfu.signals.dominant_speakers[ann.room_sid] = bob.sid
        state.sfu.signals.network_quality[ann.sid] = 2
        (room,) = status_summary(state)["rooms"]
        assert room["dominant_speaker"] == "bob"
        levels = {p["identity"]: p["network_quality_level"] for p in room["participants"]}
        assert levels == {"ann": 2, "bob": None}
    finally:
        state.sfu.store.close()
