"""A plain aiortc WHIP publisher and WHEP viewer on a running unit, with room clients."""

from __future__ import annotations

import asyncio
import dataclasses

from edge_sfu.client import Room, connect
from edge_sfu.media.settings import IceServer
from tests.support.media import PatternVideoTrack, ToneAudioTrack, receive_frames
from tests.support.sfu import FAST, RunningSfu, running_sfu
from tests.support.waiting import wait_for

from .aiortc_whip import AiortcWhip
from .conftest import LOOPBACK


def _room(sfu: RunningSfu, name: str = "room1"):  # type: ignore[no-untyped-def]
    return sfu.context.rooms.live_room_by_name(name)


async def test_aiortc_publisher_is_a_participant_every_client_receives(
    sfu: RunningSfu, clients: list[Room]
) -> None:
    viewer = await connect(sfu.ws_url, sfu.token("viewer"), room="room1")
    clients.append(viewer)
    video = viewer.expect("track_subscribed", lambda track, *_: track.kind == "video")
    audio = viewer.expect("track_subscribed", lambda track, *_: track.kind == "audio")
    whip = AiortcWhip()
    try:
        result = await whip.publish(
            sfu.base,
            "room1",
            sfu.token("encoder"),
            PatternVideoTrack(320, 240, 15),
            ToneAudioTrack(),
        )
        assert result.status == 201, result.body
        assert result.headers["Content-Type"].startswith("application/sdp")
        assert result.headers["ETag"].startswith('"')
        assert result.headers["Accept-Patch"] == "application/trickle-ice-sdpfrag"
        assert result.location is not None and "/whip-sessions/" in result.location
        assert "Link" not in result.headers  # no STUN/TURN configured
        video_track, _, publisher = await asyncio.wait_for(video, 20)
        audio_track, _, _ = await asyncio.wait_for(audio, 20)
        assert publisher.identity == "encoder"
        frames = await receive_frames(video_track, 20)
        assert (frames[-1].width, frames[-1].height) == (320, 240)
        await receive_frames(audio_track, 10)
        encoder = _room(sfu).by_identity("encoder")
        assert sorted(t.name for t in encoder.published.values()) == ["audio", "video"]

        assert await whip.delete() == 200
        await wait_for(lambda: _room(sfu).by_identity("encoder") is None, timeout=5)
        router = sfu.signaling.routers[_room(sfu).sid]
        assert encoder.sid not in {t.participant_id for t in router.transports.values()}
        assert await whip.delete() == 404  # gone
    finally:
        await whip.close()


async def test_aiortc_whep_viewer_plays_one_participant_and_leaves_on_delete(
    sfu: RunningSfu, clients: list[Room]
) -> None:
    publisher = await connect(sfu.ws_url, sfu.token("kiosk"), room="room1")
    clients.append(publisher)
    await publisher.publish_track(PatternVideoTrack(320, 240, 15), "camera")
    await publisher.publish_track(ToneAudioTrack(), "microphone")
    other = await connect(sfu.ws_url, sfu.token("other"), room="room1")
    clients.append(other)
    await other.publish_track(ToneAudioTrack(), "microphone")
    whep = AiortcWhip()
    try:
        result = await whep.play(
            sfu.base, "/whep/room1/kiosk", sfu.token("player"), ("video", "audio")
        )
        assert result.status == 201, result.body
        assert result.location is not None and "/whep-sessions/" in result.location
        await wait_for(lambda: len(whep.received) == 2, timeout=10)
        by_kind = {track.kind: track for track in whep.received}
        frames = await receive_frames(by_kind["video"], 20)
        assert (frames[-1].width, frames[-1].height) == (320, 240)
        await receive_frames(by_kind["audio"], 10)
        player = _room(sfu).by_identity("player")
        assert player is not None and not player.published
        kiosk = _room(sfu).by_identity("kiosk")
        # the participant's two tracks, not the other participant's microphone
        assert set(player.subscribed) == set(kiosk.published)

        assert await whep.delete() == 200
        await wait_for(lambda: _room(sfu).by_identity("player") is None, timeout=5)
    finally:
        await whep.close()


async def test_configured_ice_servers_are_linked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # loopback addresses nothing answers: gathering contacts nothing beyond this machine
    media = dataclasses.replace(
        LOOPBACK,
        ice_servers=(
            IceServer(("stun:127.0.0.1:9",)),
            IceServer(("turn:127.0.0.1:9?transport=udp",), username="u1", credential='p"w'),
        ),
    )
    async with running_sfu(tmp_path, FAST, media=media) as sfu:
        whip = AiortcWhip()
        try:
            result = await whip.publish(sfu.base, "room1", sfu.token("cam"), PatternVideoTrack())
            assert result.status == 201, result.body
            assert result.headers.getall("Link") == [
                '<stun:127.0.0.1:9>; rel="ice-server"',
                '<turn:127.0.0.1:9?transport=udp>; rel="ice-server"; username="u1"; '
                'credential="p\\"w"; credential-type="password"',
            ]
            assert await whip.delete() == 200
        finally:
            await whip.close()


async def test_whep_per_track_plays_only_the_named_track(
    sfu: RunningSfu, clients: list[Room]
) -> None:
    publisher = await connect(sfu.ws_url, sfu.token("kiosk"), room="room1")
    clients.append(publisher)
    await publisher.publish_track(PatternVideoTrack(320, 240, 15), "camera")
    screen = await publisher.publish_track(PatternVideoTrack(160, 120, 15), "screen")
    await publisher.publish_track(ToneAudioTrack(), "microphone")
    kiosk = _room(sfu).by_identity("kiosk")
    by_name = {t.name: t.sid for t in kiosk.published.values()}
    # By name: the second video track, though an offer with one video m-line for the whole
    # participant would get the first; the audio m-line stays without a track.
    # By SID: the first one.
    for path, identity, size, name in (
        ("/whep/room1/kiosk/screen", "player1", (160, 120), "screen"),
        (f"/whep/room1/kiosk/{by_name['camera']}", "player2", (320, 240), "camera"),
    ):
        whep = AiortcWhip()
        try:
            result = await whep.play(sfu.base, path, sfu.token(identity), ("video", "audio"))
            assert result.status == 201, result.body
            assert result.headers["ETag"].startswith('"')
            assert result.location is not None and "/whep-sessions/" in result.location
            assert "a=inactive" in result.body.split("m=audio", 1)[1]
            await wait_for(lambda w=whep: len(w.received) == 1, timeout=10)
            frames = await receive_frames(whep.received[0], 20)
            assert (frames[-1].width, frames[-1].height) == size
            assert [t.kind for t in whep.received] == ["video"]
            player = _room(sfu).by_identity(identity)
            assert player is not None and set(player.subscribed) == {by_name[name]}
            assert await whep.delete() == 200
            await wait_for(lambda i=identity: _room(sfu).by_identity(i) is None, timeout=5)
        finally:
            await whep.close()
    assert screen.sid == by_name["screen"]
