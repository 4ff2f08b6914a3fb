"""Offers that keep what was negotiated: payload types and header-extension ids.

aiortc's ``createOffer`` resets every transceiver's codecs and header extensions to its own
defaults, even on m-lines a participant's offer already numbered (a browser puts VP8 on 96,
aiortc on 97; Chrome's mid extension may be 4, aiortc's is 1). A browser refuses such a
re-offer ("RTP extension ID reassignment not supported"), and a changed payload type would
silently stop a receiver, which takes its codecs only when it first starts.

``stable_offer`` makes aiortc's offer, then puts back the numbering of every m-line that
was already negotiated, and numbers the new m-lines after it: a codec or extension already
in use keeps its number, and a new one takes a number nobody in the BUNDLE group uses (a
browser refuses one payload type meaning two codecs across bundled m-lines).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription, sdp
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters

#: Dynamic payload types (RFC 3551) and one-byte header-extension ids (RFC 8285).
_DYNAMIC_PTS = range(96, 128)
_EXTENSION_IDS = range(1, 15)


def _is_rtx(codec: RTCRtpCodecParameters) -> bool:
    return codec.mimeType.lower().endswith("/rtx")


def _key(codec: RTCRtpCodecParameters) -> tuple[Any, ...]:
    params = tuple(sorted((k, str(v)) for k, v in codec.parameters.items() if k != "apt"))
    apt = codec.parameters.get("apt") if _is_rtx(codec) else None
    return (codec.mimeType.lower(), codec.clockRate, codec.channels, params, apt)


class _Numbering:
    """The payload types and extension ids of one peer connection's negotiated m-lines."""

    def __init__(self) -> None:
        self.pts: dict[tuple[Any, ...], int] = {}
        self.ext_ids: dict[str, int] = {}

    def learn(self, codecs: list[RTCRtpCodecParameters], exts: list[Any]) -> None:
        for codec in codecs:
            if codec.payloadType is not None:
                self.pts.setdefault(_key(codec), codec.payloadType)
        for ext in exts:
            self.ext_ids.setdefault(ext.uri, ext.id)

    def _free_pt(self, wanted: int | None) -> int:
        used = set(self.pts.values())
        if wanted is not None and wanted not in used:
            return wanted
        return next(pt for pt in _DYNAMIC_PTS if pt not in used)

    def codecs(self, codecs: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
        """``codecs`` renumbered: known codecs keep their type, new ones take a free one."""
        moved: dict[int, int] = {}
        renamed: dict[int, RTCRtpCodecParameters] = {}
        # primaries first: an RTX entry names its primary's (new) type in ``apt``
        for index, codec in sorted(enumerate(codecs), key=lambda ic: _is_rtx(ic[1])):
            params = dict(codec.parameters)
            if _is_rtx(codec):
                apt = params.get("apt")
                if not isinstance(apt, int) or apt not in moved:
                    continue  # its primary codec is not offered
                params["apt"] = moved[apt]
            codec = dataclasses.replace(codec, parameters=params)
            pt = self.pts.get(_key(codec))
            if pt is None:
                pt = self._free_pt(codec.payloadType)
                self.pts[_key(codec)] = pt
            if codec.payloadType is not None:
                moved[codec.payloadType] = pt
            renamed[index] = dataclasses.replace(codec, payloadType=pt)
        return [renamed[i] for i in sorted(renamed)]

    def extensions(self, exts: list[Any]) -> list[RTCRtpHeaderExtensionParameters]:
        """``exts`` renumbered: a known URI keeps its id, a new one takes a free id."""
        out = []
        for ext in exts:
            ext_id = self.ext_ids.get(ext.uri)
            if ext_id is None:
                used = set(self.ext_ids.values())
                ext_id = (
                    ext.id
                    if ext.id not in used
                    else next(i for i in _EXTENSION_IDS if i not in used)
                )
                self.ext_ids[ext.uri] = ext_id
            out.append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=ext.uri))
        return out


async def stable_offer(pc: RTCPeerConnection) -> RTCSessionDescription:
    """``pc.createOffer()``, with the numbering of negotiated m-lines kept (see module)."""
    # From the last description applied, not the transceivers: any createOffer resets those.
    numbering = _Numbering()
    saved: dict[str, tuple[list[Any], list[Any]]] = {}
    current = pc.localDescription
    if current is not None:
        for media in sdp.SessionDescription.parse(current.sdp).media:
            if media.kind in ("audio", "video") and media.rtp.muxId and media.rtp.codecs:
                codecs = list(media.rtp.codecs)
                exts = list(media.rtp.headerExtensions)
                saved[media.rtp.muxId] = (codecs, exts)
                numbering.learn(codecs, exts)
    offer = await pc.createOffer()
    if not saved:
        return offer  # a first offer: aiortc's numbering is the negotiation's
    description = sdp.SessionDescription.parse(offer.sdp)
    for transceiver in pc.getTransceivers():
        index = transceiver._get_mline_index()
        if index is None or index >= len(description.media):
            continue
        if transceiver.mid in saved:
            codecs, exts = saved[transceiver.mid]
        else:
            codecs = numbering.codecs(list(transceiver._codecs))
            exts = numbering.extensions(list(transceiver._headerExtensions))
        transceiver._codecs = codecs
        transceiver._headerExtensions = exts
        _rewrite(description.media[index], transceiver)
    return RTCSessionDescription(sdp=str(description), type="offer")


def _rewrite(media: sdp.MediaDescription, transceiver: RTCRtpTransceiver) -> None:
    codecs = transceiver._codecs
    media.fmt = [c.payloadType for c in codecs]
    media.rtp.codecs = codecs
    media.rtp.headerExtensions = transceiver._headerExtensions
    has_rtx = any(_is_rtx(c) for c in codecs)
    if media.ssrc and has_rtx and len(media.ssrc) == 1:
        rtx_ssrc = transceiver.sender._rtx_ssrc
        media.ssrc.append(sdp.SsrcDescription(ssrc=rtx_ssrc, cname=media.ssrc[0].cname))
        media.ssrc_group = [
            sdp.GroupDescription(semantic="FID", items=[media.ssrc[0].ssrc, rtx_ssrc])
        ]
    elif not has_rtx and len(media.ssrc) > 1:
        media.ssrc = media.ssrc[:1]
        media.ssrc_group = []
