"""A participant that offers (as twilio-video.js does): the SFU answers, re-offers keep the
negotiated numbering, and a subscription m-line the participant recycles is answered sendrecv.

The participant here is a real aiortc peer whose offer is renumbered the way a browser
numbers it (payload types and extension ids differ from aiortc's defaults)."""

from __future__ import annotations

import re

from aiortc import RTCSessionDescription, sdp
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from edge_sfu.media import H264, OPUS, Router, seam
from edge_sfu.media.settings import MediaSettings
from tests.integration.media.peers import new_pc
from tests.support.media import ToneAudioTrack
from tests.support.waiting import wait_for

#: aiortc's dynamic payload types and extension ids, moved to where a browser has them.
PT_SHIFT = 10
EXT_SHIFT = 3


def browser_numbered(offer: str) -> str:
    """``offer`` with every dynamic payload type +10 and every extension id +3."""

    def shifted(text: str) -> str:
        value = int(text)
        return str(value + PT_SHIFT) if value >= 96 else text

    def pt(match: re.Match[str]) -> str:
        return shifted(match.group(0))

    lines = []
    for line in offer.splitlines():
        if line.startswith("m=audio") or line.startswith("m=video"):
            head, fmts = line.split(" UDP/TLS/RTP/SAVPF ")
            line = head + " UDP/TLS/RTP/SAVPF " + re.sub(r"\d+", pt, fmts)
        elif line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
            line = re.sub(r"^(a=[a-z-]+:)(\d+)", lambda m: m.group(1) + shifted(m.group(2)), line)
            line = re.sub(r"apt=(\d+)", lambda m: "apt=" + shifted(m.group(1)), line)
        elif line.startswith("a=extmap:"):
            line = re.sub(
                r"^a=extmap:(\d+)", lambda m: f"a=extmap:{int(m.group(1)) + EXT_SHIFT}", line
            )
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def numbering(description: str) -> dict[str, tuple[dict[int, str], dict[int, str]]]:
    """mid -> ({payload type: codec}, {extension id: uri})."""
    parsed = sdp.SessionDescription.parse(description)
    out = {}
    for media in parsed.media:
        if media.kind in ("audio", "video"):
            codecs = {
                c.payloadType: f"{c.mimeType}/{c.parameters.get('apt', '')}"
                for c in media.rtp.codecs
                if c.payloadType is not None
            }
            exts = {e.id: e.uri for e in media.rtp.headerExtensions}
            out[media.rtp.muxId] = (codecs, exts)
    return out


def direction(description: str, mid: str) -> str:
    parsed = sdp.SessionDescription.parse(description)
    return next(str(m.direction) for m in parsed.media if m.rtp.muxId == mid)


async def test_sfu_re_offer_keeps_the_participants_numbering_and_recycled_mlines_go_sendrecv() -> (
    None
):
    router = Router("RMtest", MediaSettings())
    client = new_pc()
    try:
        transport = router.create_transport("PAclient")
        client.addTransceiver(VideoStreamTrack(), direction="sendonly")
        client.addTransceiver(AudioStreamTrack(), direction="sendonly")
        offer = await client.createOffer()
        munged = browser_numbered(offer.sdp)
        await client.setLocalDescription(RTCSessionDescription(munged, "offer"))
        answer = await transport.handle_client_offer(client.localDescription.sdp)
        await client.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        first = numbering(answer)
        assert first == {mid: n for mid, n in numbering(munged).items() if mid in first}
        assert sorted(transport.incoming) == ["0", "1"]
        # the fast path reads every extension at the id this offer gave it, not at the
        # SFU's own ids (which this offer gave other extensions)
        ids = transport._ext_ids
        assert ids.transport_cc == seam.EXT_TRANSPORT_CC + EXT_SHIFT
        assert ids.audio_level == seam.EXT_AUDIO_LEVEL + EXT_SHIFT
        assert ids.mid == seam.EXT_MID + EXT_SHIFT

        # aiortc alone would renumber the negotiated m-lines to its defaults (the bug)
        raw = await transport.pc.createOffer()
        assert numbering(raw.sdp)["0"] != first["0"]

        # a subscription: the SFU re-offers with a new send-only m-line
        producer = router.produce_local("PAother", H264, producer_id="MTother")
        audio = router.produce_local("PAother", OPUS, producer_id="MTaudio")
        transport.add_consumer(producer, "COvideo")
        transport.add_consumer(audio, "COaudio")
        re_offer = await transport.create_offer()
        again = numbering(re_offer)
        for mid in first:
            assert again[mid] == first[mid]
        # one meaning per payload type and per extension id across the BUNDLE group
        meanings: dict[int, str] = {}
        uris: dict[int, str] = {}
        for codecs, exts in again.values():
            for pt_, name in codecs.items():
                base = name.split("/")[1].lower()
                assert meanings.setdefault(pt_, base) == base, (pt_, again)
            for ext_id, uri in exts.items():
                assert uris.setdefault(ext_id, uri) == uri
        new_mids = [mid for mid in again if mid not in first]
        assert len(new_mids) == 2
        await client.setRemoteDescription(RTCSessionDescription(re_offer, "offer"))
        client_answer = await client.createAnswer()
        await client.setLocalDescription(client_answer)
        await transport.handle_answer(client.localDescription.sdp)

        # the participant recycles the subscription's video m-line for a publication
        video_mid = next(m for m in new_mids if again[m][0] and "H264" in str(again[m][0]))
        recycled = next(t for t in client.getTransceivers() if t.mid == video_mid)
        recycled.direction = "sendrecv"
        recycled.sender.replaceTrack(VideoStreamTrack())
        offer2 = await client.createOffer()
        await client.setLocalDescription(offer2)
        answer2 = await transport.handle_client_offer(client.localDescription.sdp)
        assert direction(answer2, video_mid) == "sendrecv"
        assert video_mid in transport.incoming
        # and the SFU's next offer keeps it sendrecv
        await client.setRemoteDescription(RTCSessionDescription(answer2, "answer"))
        transport.add_consumer(router.produce_local("PAthird", H264, producer_id="MT3"), "CO3")
        offer3 = await transport.create_offer()
        assert direction(offer3, video_mid) == "sendrecv"
        assert numbering(offer3)[video_mid] == numbering(answer2)[video_mid]
    finally:
        await client.close()
        await router.close()


async def test_audio_levels_are_read_at_the_ids_of_the_participants_offer() -> None:
    """A participant's own extension numbering (the audio level where the SFU puts
    abs-send-time): the forwarding path reads its levels there, so its speech counts."""
    router = Router("RMtest", MediaSettings())
    client = new_pc()
    try:
        transport = router.create_transport("PAclient")
        client.addTransceiver(ToneAudioTrack(), direction="sendonly")
        offer = await client.createOffer()
        await client.setLocalDescription(
            RTCSessionDescription(browser_numbered(offer.sdp), "offer")
        )
        answer = await transport.handle_client_offer(client.localDescription.sdp)
        await client.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        producer = router.produce(transport, transport.incoming["0"])
        assert producer.level is not None
        meter = producer.level
        # a 440 Hz tone at amplitude 8000 is about -15 dBov; silence (nothing read) is 127
        level = await wait_for(lambda: meter.level_dbov, lambda v: v < 60, 20, what="levels")
        assert level < 60
    finally:
        await client.close()
        await router.close()
