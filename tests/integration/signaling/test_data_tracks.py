"""Data tracks through signaling: published and subscribed on negotiated channels, reliable
or lossy, with the size limit, subscribe rules, unpublish and a later joiner."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edge_sfu.client import LocalDataTrack, PublishError, RemoteDataTrack, Room, connect
from edge_sfu.media import DataMessageTooLarge
from tests.support.media import ToneAudioTrack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


async def subscribed_data(room: Room, count: int) -> dict[str, RemoteDataTrack]:
    """The data tracks ``room`` is subscribed to, by track name, once there are ``count``.

    Read from the room's state, not awaited one ``track_subscribed`` at a time: the client
    emits the events of messages that arrive together back to back, so a second one would
    fire before a second ``wait_for`` is registered.
    """

    def subscribed() -> dict[str, RemoteDataTrack]:
        return {
            pub.track.name: pub.track
            for who in room.participants.values()
            for pub in who.tracks.values()
            if isinstance(pub.track, RemoteDataTrack)
        }

    found: dict[str, RemoteDataTrack] = await wait_for(
        subscribed, lambda got: len(got) >= count, timeout=30, what=f"{count} data tracks"
    )
    return found


def collect(track: RemoteDataTrack) -> list[Any]:
    messages: list[Any] = []
    track.on("message", messages.append)
    return messages


async def test_data_tracks_reach_subscribers_reliable_and_lossy(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    chat = await alice.publish_data("chat")
    cursor = await alice.publish_data("cursor", ordered=False, max_retransmits=0)
    assert chat.sid and chat.sid.startswith("MT") and cursor.sid
    assert chat.reliable and not cursor.reliable
    assert chat.channel is not None and cursor.channel is not None
    assert chat.channel.id != cursor.channel.id

    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    (alice_seen,) = bob.participants.values()
    assert {p.kind for p in alice_seen.tracks.values()} == {"data"}
    tracks = await subscribed_data(bob, 2)
    assert tracks["chat"].reliable and tracks["chat"].ordered
    assert not tracks["cursor"].ordered and tracks["cursor"].max_retransmits == 0
    chat_in, cursor_in = collect(tracks["chat"]), collect(tracks["cursor"])
    await wait_for(lambda: tracks["chat"].channel.readyState == "open", what="bob's channels open")

    for i in range(50):
        assert chat.send(f"message {i}")
        cursor.send(bytes([i]) * 8)
    chat.send(b"\x00\x01binary")
    await wait_for(lambda: len(chat_in) == 51, what="51 chat messages")
    assert chat_in == [f"message {i}" for i in range(50)] + [b"\x00\x01binary"]
    # loopback loses nothing, so even the lossy track delivers all (in any order)
    await wait_for(lambda: len(cursor_in) == 50, what="50 cursor messages")
    assert sorted(cursor_in) == [bytes([i]) * 8 for i in range(50)]

    # both ways: bob publishes, alice receives
    reply = await bob.publish_data("reply")
    (back,) = (await subscribed_data(alice, 1)).values()
    back_in = collect(back)
    await wait_for(lambda: back.channel.readyState == "open", what="alice's channel open")
    reply.send("hi alice")
    await wait_for(lambda: back_in == ["hi alice"], what="reply")

    # a later joiner gets the same tracks; the size limit holds at the client and the server
    carol = await connect(sfu.ws_url, sfu.token("carol"))
    clients.append(carol)
    carol_tracks = await subscribed_data(carol, 3)
    carol_chat = collect(carol_tracks["chat"])
    await wait_for(lambda: carol_tracks["chat"].channel.readyState == "open", what="carol open")
    with pytest.raises(DataMessageTooLarge):
        chat.send("x" * (16 * 1024 + 1))
    assert chat.channel is not None
    chat.channel.send("y" * (16 * 1024 + 1))  # around the client's check: the server refuses
    code, message = await alice.wait_for("error", timeout=10)
    assert code == 53004 and chat.sid in message and "16385" in message
    chat.send("z" * (16 * 1024))  # exactly the limit passes
    await wait_for(
        lambda: len(carol_chat) == 1 and len(chat_in) == 52, what="the limit-sized message"
    )
    assert carol_chat == ["z" * 16384] and chat_in[-1] == "z" * 16384

    # unpublish: the others see it go and their channels close
    gone = bob.expect("track_unpublished", lambda pub, _who: pub.sid == cursor.sid)
    alice.unpublish_track(cursor)
    await asyncio.wait_for(gone, 10)
    await wait_for(
        lambda: tracks["cursor"].channel.readyState == "closed", what="bob's cursor closed"
    )
    chat.send("still here")
    await wait_for(lambda: chat_in[-1] == "still here", what="chat after unpublish")


async def test_subscribe_rules_and_publish_refusals_for_data(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    chat = await alice.publish_data("chat")
    await alice.publish_track(ToneAudioTrack(), "mic")
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    (bob_chat,) = (await subscribed_data(bob, 1)).values()
    bob_in = collect(bob_chat)
    await wait_for(lambda: bob_chat.channel.readyState == "open", what="bob's chat open")

    # rules that exclude data tracks end the subscription and close the channel
    rooms = sfu.signaling.rooms
    gone = bob.expect("track_unsubscribed", lambda track, *_: isinstance(track, RemoteDataTrack))
    await rooms.set_subscribe_rules(bob.local_sid, [{"type": "include", "kind": "audio"}])
    await asyncio.wait_for(gone, 10)
    await wait_for(lambda: bob_chat.channel.readyState == "closed", what="bob's chat closed")
    # Seen by the server before bob subscribes again (an in-process subscriber tells):
    # otherwise it could still be on its way, and rightly reach bob's new channel.
    bridge = sfu.signaling.sessions[alice.local_sid].participation.bridge
    reached: list[object] = []
    witness = bridge.router.consume_data(bridge.data.producers[chat.sid], on_message=reached.append)
    chat.send("not for bob")
    await wait_for(lambda: reached == ["not for bob"], what="the server has the message")
    witness.close()
    # and back: a new channel, messages flow again
    back = bob.expect("track_subscribed", lambda track, *_: isinstance(track, RemoteDataTrack))
    await rooms.set_subscribe_rules(bob.local_sid, [{"type": "include", "all": True}])
    (again, _pub, _who) = await asyncio.wait_for(back, 10)
    again_in = collect(again)
    await wait_for(lambda: again.channel.readyState == "open", what="bob's new chat open")
    chat.send("for bob")
    await wait_for(lambda: again_in == ["for bob"], what="message after resubscribe")
    assert bob_in == []

    # a name in use is refused (publish-failed, so the waiting call raises at once)
    with pytest.raises(PublishError) as refused:
        await asyncio.wait_for(alice.publish_data("chat"), 10)
    assert refused.value.code == 53304
    with pytest.raises(ValueError):
        LocalDataTrack("x", "x", max_retransmits=1, max_packet_life_time=100)
    alice.send(
        {
            "type": "publish",
            "ref": 7,
            "tracks": [{"client_id": "d", "kind": "data", "max_retransmits": 1, "codec": "VP8"}],
        }
    )
    code, message = await alice.wait_for("error", timeout=10)
    assert code == 53004 and "codec" in message
