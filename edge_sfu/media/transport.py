"""A transport: one remote participant's peer connection, carrying raw RTP both ways."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from aiortc import (
    RTCDataChannel,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import candidate_from_sdp

from edge_common.lifecycle import AsyncCloseable, TaskSet
from edge_sfu.media import seam
from edge_sfu.media.allocation import SubscriberAllocation
from edge_sfu.media.bandwidth import Estimate, TransportBandwidth
from edge_sfu.media.consumer import Consumer
from edge_sfu.media.errors import MediaClosed, MediaError, UnsupportedCodec
from edge_sfu.media.estimator import ProbeRequest
from edge_sfu.media.incoming import IncomingTrack
from edge_sfu.media.layers import LayerSpec, sending_layers
from edge_sfu.media.packet import PACKET_OVERHEAD_BYTES, CodecInfo
from edge_sfu.media.producer import Producer
from edge_sfu.media.settings import MediaSettings
from edge_sfu.media.slots import PublicationSlot, SendSlot, codec_preferences

logger = logging.getLogger(__name__)

#: A data channel as the engine hands it out (``create_data_channel``, ``DataConsumer.channel``):
#: callers outside the media package name it by this alias, not by aiortc's class.
DataChannel: TypeAlias = RTCDataChannel
#: SCTP stream ids the SFU hands out for data channels: browsers support 0-1023.
DATA_CHANNEL_IDS = 1024
#: A track the downlink estimate holds back this long (seconds) makes the SFU probe for it.
PROBE_AFTER_S = 3.0
#: Overuse seen within this (seconds) makes loss count as congestion at once (allocation).
OVERUSE_RECENT_S = 2.0
#: How often transport-cc feedback goes to a publisher (and the estimate is refreshed).
FEEDBACK_INTERVAL_S = 0.1
#: While the estimate binds, RTP to the participant is paced at this times the estimate
#: (``seam.pacing``): above what the allocation fills (it keeps a tenth of headroom), so
#: the pacer only spreads bursts and a queue does not build in it for long.
PACING_FACTOR = 1.0
_MID = re.compile(r"^a=mid:(\S+)", re.M)
_TWCC_EXTMAP = re.compile(
    r"^a=extmap:(\d+)(?:/\w+)? http://www\.ietf\.org/id/"
    r"draft-holmer-rmcat-transport-wide-cc-extensions-01\s*$",
    re.M,
)
_MSID = re.compile(r"^a=msid:(\S+) (\S+)", re.M)
_DIRECTION = re.compile(r"^a=(sendonly|recvonly|sendrecv|inactive)\s*$", re.M)
#: Remote ICE candidates a participant may trickle: each makes the SFU send checks.
MAX_REMOTE_CANDIDATES = 64
#: A send-only m-line the participant also sends on (a recycled m-line) is sendrecv.
_WITH_RECV = {"sendonly": "sendrecv", "inactive": "recvonly"}
_WITHOUT_RECV = {v: k for k, v in _WITH_RECV.items()}


def _remote_track_ids(sdp: str) -> dict[str, str]:
    """mid -> track id from each m-section's ``a=msid`` line."""
    out: dict[str, str] = {}
    for section in sdp.split("\nm=")[1:]:
        mid = _MID.search(section)
        msid = _MSID.search(section)
        if mid and msid:
            out[mid.group(1)] = msid.group(2)
    return out


def _sending_track_ids(sdp: str) -> dict[str, str]:
    """mid -> msid track id of the m-sections an offer sends on (sendonly, sendrecv)."""
    out: dict[str, str] = {}
    for section in sdp.replace("\r\n", "\n").split("\nm=")[1:]:
        mid, msid, direction = (
            _MID.search(section),
            _MSID.search(section),
            _DIRECTION.search(section),
        )
        if mid and msid and direction and direction.group(1) in ("sendonly", "sendrecv"):
            out[mid.group(1)] = msid.group(2)
    return out


def codec_capability(codec: CodecInfo) -> RTCRtpCodecCapability:
    """The aiortc capability matching ``codec``, to pin a subscriber's m-line to it."""
    caps = RTCRtpSender.getCapabilities(codec.kind).codecs
    same = [c for c in caps if c.mimeType.lower() == codec.mime_type.lower()]
    if not same:
        raise UnsupportedCodec(f"cannot forward {codec.mime_type}")
    wanted = str(codec.parameters.get("profile-level-id", "")).lower()
    for cap in same:
        if str(cap.parameters.get("profile-level-id", "")).lower() == wanted:
            return cap
    return same[-1]


class Transport(AsyncCloseable):
    """One remote participant's ``RTCPeerConnection``, with aiortc's media engine removed.

    The SFU makes offers (``create_offer``/``handle_answer``): for publication slots,
    consumers and data channels. A participant may offer too (``handle_client_offer``, for
    clients that publish by offering, as twilio-video.js does): the SFU answers, never
    while an offer of its own is outstanding (the caller decides glare: the SFU is the
    impolite side). ``on_negotiation_needed`` fires when the SFU side changed and an SFU
    offer is due. aiortc gathers candidates before it returns a description, so the SFU's
    descriptions carry all its candidates; a participant's may trickle in
    (``add_remote_candidates``). SFU re-offers keep every negotiated m-line's payload
    types and header-extension ids (``seam.stable_offer``).
    """

    def __init__(
        self,
        participant_id: str,
        settings: MediaSettings,
        *,
        transport_id: str | None = None,
    ) -> None:
        super().__init__()
        self.id = transport_id or f"TR{uuid.uuid4().hex}"
        self.participant_id = participant_id
        self.settings = settings
        self.pc = RTCPeerConnection(settings.rtc_configuration())
        seam.tolerate_overtaken_connect(self.pc)  # the SFU offers, so answers race its passes
        self.incoming: dict[str, IncomingTrack] = {}
        self.consumers: dict[str, Consumer] = {}
        self.producers: dict[str, Producer] = {}
        self._adopted: set[int] = set()
        self._fresh: list[tuple[IncomingTrack, Any]] = []
        # consumers whose m-line the next SFU offer will add
        self._pending: list[tuple[Consumer, RTCRtpCodecCapability, dict[str, SendSlot]]] = []
        self._send_slots: list[SendSlot] = []
        self._publication_slots: list[PublicationSlot] = []
        # reused publication m-lines whose new track starts once the answer sends on them
        self._restarts: list[tuple[RTCRtpTransceiver, IncomingTrack, seam.ReceiveParams]] = []
        self._releases: list[Callable[[], None]] = []
        self._paths: dict[int, seam.SendPath] = {}
        self._pacing_bps: int | None = None  # the pacer's rate while the estimate binds
        self._tasks = TaskSet(f"transport {self.id}")
        self._rtcp_started = False
        self._lock = asyncio.Lock()
        self._data_ids: set[int] = set()
        self._next_data_id = 0
        self.on_incoming_track: Callable[[IncomingTrack], None] | None = None
        self.on_negotiation_needed: Callable[[], None] | None = None
        # participant offers: recycled send m-lines, trickled candidates, in-band channels
        self._recycled: set[int] = set()
        self._remote_candidates: set[str] = set()
        self._in_band_channels = False
        #: The header-extension ids the participant's packets carry (read on ingress).
        self._ext_ids = seam.ExtensionIds()
        #: Bandwidth estimation of this participant's uplink and downlink.
        self.bandwidth = TransportBandwidth(settings)
        self.bandwidth.sent_bytes = lambda: sum(
            c.octets_sent + c.packets_sent * PACKET_OVERHEAD_BYTES for c in self.consumers.values()
        )
        self._remb_sent: dict[str, int] = {}
        # the transport-cc header extension id the participant's answer took (0: none)
        self._twcc_ext_id = 0
        #: Shares the downlink estimate over this participant's consumers; a new estimate
        #: runs it at once (``on_estimate``).
        self.allocation = SubscriberAllocation(
            lambda: list(self.consumers.values()),
            self._available_outgoing,
            loss=lambda: None if self.estimate is None else self.estimate.loss,
            overused=self._overused,
            probe_overshoot=lambda: self.bandwidth.downlink.probe_overshoot(time.monotonic()),
            proven_bps=self._proven_bps,
        )
        self.on_estimate = self.reallocate
        #: Called after an allocation pass changed a share (the router recomputes publisher
        #: caps).
        self.on_allocated: Callable[[Transport], None] | None = None
        self._shares: dict[str, int | None] = {}
        self._held_back_since: float | None = None
        self._probes_seen = 0
        self._probe_target: int | None = None

    def __repr__(self) -> str:
        return f"Transport({self.id!r}, participant={self.participant_id!r})"

    @property
    def connection_state(self) -> str:
        """aiortc's connection state: new, connecting, connected, failed, closed."""
        return str(self.pc.connectionState)

    # -- bandwidth -------------------------------------------------------------------

    @property
    def estimate(self) -> Estimate | None:
        """What the SFU may send to this participant and what it can send (None before
        any feedback or media); ``on_estimate`` fires when it changes meaningfully."""
        return self.bandwidth.estimate

    @property
    def on_estimate(self) -> Callable[[], None] | None:
        """Called (no arguments) when ``estimate`` changed meaningfully, not per packet."""
        return self.bandwidth.on_estimate

    @on_estimate.setter
    def on_estimate(self, callback: Callable[[], None] | None) -> None:
        self.bandwidth.on_estimate = callback

    @property
    def pacing_bps(self) -> int | None:
        """The rate RTP to the participant is paced at while its estimate binds (None:
        not paced, each packet leaves as it is forwarded)."""
        return self._pacing_bps

    @property
    def packets_paced(self) -> int:
        """RTP packets to the participant that went through a pacer so far."""
        return sum(path.packets_paced for path in self._paths.values())

    def report_sender_estimate(self, bps: int | None) -> None:
        """What the participant's own sender estimates its uplink carries (its client's
        report; None: it has none)."""
        self.bandwidth.set_sender_estimate(bps, time.monotonic())

    def sender_estimate(self) -> int | None:
        """The participant's own latest estimate of its uplink, while fresh, or None."""
        return self.bandwidth.sender_estimate(time.monotonic())

    def set_publisher_cap(self, bps: int | None) -> None:
        """The most this participant's senders may send in total (REMB ceiling)."""
        self.bandwidth.set_publisher_cap(bps)

    def probe(self, wanted_bps: int) -> bool:
        """Probe the downlink before stepping up to ``wanted_bps``: padding on a video
        stream fills the total up to the probe's rate (1.5 to 2 times the estimate, for
        half a second); if the participant's transport-cc feedback shows it got through,
        the estimate rises to it. Only for a participant that sends transport-cc feedback;
        returns whether a probe started (failed probes back off)."""
        if not self._twcc_ext_id or self.closed or not self.bandwidth.feedback_received:
            return False
        request = self.bandwidth.downlink.start_probe(int(wanted_bps), time.monotonic())
        if request is None:
            return False
        consumers = self.consumers
        self._pace()  # a probe goes out at its own rate, not the estimate's
        self._tasks.spawn(self._probe_then_pace(request, consumers), name=f"probe {self.id}")
        return True

    async def _probe_then_pace(self, request: ProbeRequest, consumers: dict[str, Consumer]) -> None:
        try:
            await self.bandwidth.run_probe(request, lambda: list(consumers.values()))
        finally:
            self._pace()

    def on_rtp_arrival(
        self, transport_seq: int | None, arrival: float, size: int, ssrc: int
    ) -> None:
        """Called for every RTP packet the participant sends, as it arrives: its
        transport-wide sequence number (None without the extension), its arrival time
        (``time.monotonic()``), its size on the wire and its SSRC.

        The input of uplink bandwidth estimation; runs on the receiving hot path, once per
        packet, so it must stay cheap and never raise.
        """
        self.bandwidth.on_rtp_arrival(transport_seq, arrival, size, ssrc)

    def _on_rtcp_raw(self, data: bytes) -> None:
        self.bandwidth.on_rtcp(data, time.monotonic())

    def _track_rate_estimate(self, track: IncomingTrack) -> None:
        if (
            track.kind == "video"
            and track.rate_estimator is None
            and not self.bandwidth.uplink_twcc
        ):
            track.rate_estimator = self.bandwidth.track_estimator()

    def _drop_rate_estimates(self) -> None:
        # the participant sends transport-cc: its own estimator does the work, with our
        # feedback; a receive-side estimate would only cost CPU per packet
        for track in self.incoming.values():
            if track.rate_estimator is not None:
                self.bandwidth.drop_track_estimator(track.rate_estimator)
                track.rate_estimator = None

    # -- offer / answer --------------------------------------------------------------

    async def create_offer(self) -> str:
        """An SFU offer (after consumers were added or removed)."""
        self._check_open()
        async with self._lock:
            self._materialize_consumers()
            self._reopen_publications()
            self._apply_recycled()
            offer = await seam.stable_offer(self.pc)
            self._prepare_ice()
            await self.pc.setLocalDescription(offer)
            self._adopt({})
            self._start_rtcp()
            return self._with_simulcast(str(self.pc.localDescription.sdp))

    async def handle_answer(self, sdp: str) -> None:
        """Apply the participant's answer to ``create_offer``."""
        self._check_open()
        async with self._lock:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            self._learn_extensions(sdp)
            ids = _remote_track_ids(sdp)
            self._adopt(ids)
            simulcast = seam.answered_rids(sdp)
            # the answer settles the codec (and simulcast layers) of m-lines the SFU
            # offered to receive on
            for transceiver in self.pc.getTransceivers():
                track = self.incoming.get(transceiver.mid or "")
                if track is not None:
                    track.set_negotiated_codecs(seam.negotiated_codecs(transceiver))
                    publication = self._slot_of(transceiver)
                    if publication is not None and publication.simulcast:
                        sent = simulcast.get(track.mid, [])
                        track.set_layers([s for s in publication.simulcast if s.name in sent])
                    if track.remote_track_id is None:
                        track.remote_track_id = ids.get(track.mid)
            for slot in self._send_slots:
                slot.answered()
            restarts, self._restarts = self._restarts, []
            for transceiver, track, params in restarts:
                if (
                    transceiver.currentDirection in ("recvonly", "sendrecv")
                    and self.incoming.get(track.mid) is track
                ):
                    track.receive_started(params)

    # -- participant offers -----------------------------------------------------------

    @property
    def offer_outstanding(self) -> bool:
        """Whether an SFU offer waits for its answer (a participant's offer is then glare)."""
        return str(self.pc.signalingState) != "stable"

    async def handle_client_offer(self, sdp: str, *, fill_receive_lines: bool = False) -> str:
        """Apply an offer from the participant; returns the SFU's answer.

        ``fill_receive_lines`` (a viewer that offers receive-only m-lines and never
        renegotiates, as WHEP players do): the consumers added since the last description
        take the offer's m-lines of their kind, in the order they were added, and are
        answered ``sendonly`` on them; m-lines left over are answered ``inactive``. Each
        consumer's m-line is pinned to its producer's codec, so the offer must carry it.

        New m-lines the participant sends on become ``IncomingTrack``s (``on_incoming_track``,
        ``remote_track_id`` from ``a=msid``). An m-line that starts sending under a new
        msid (a track published again on a reused transceiver) gets a fresh
        ``IncomingTrack``. A send-only m-line of the SFU that the participant also sends on
        (it recycled a subscription's transceiver for a publication) is answered
        ``sendrecv`` and carries both. Raises ``MediaError`` while an SFU offer is
        outstanding: the SFU does not roll back, the participant does.
        """
        self._check_open()
        async with self._lock:
            if self.offer_outstanding:
                raise MediaError("an offer of the SFU is outstanding")
            if fill_receive_lines:
                # aiortc gives each m-line of an offer the first mid-less transceiver of its
                # kind: the consumers' new send-only transceivers take the viewer's m-lines.
                self._materialize_consumers()
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            self._learn_extensions(sdp)
            sending = _sending_track_ids(sdp)
            # No await from setRemoteDescription to here: no receiver has started yet.
            self._adopt(_remote_track_ids(sdp))
            renewed = self._relearn(sending)
            simulcast = self._offered_simulcast(sdp)
            self._apply_recycled()
            self._prepare_ice()
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
            self._adopt({})
            self._start_rtcp()
            for transceiver, track, params in renewed:
                if transceiver.currentDirection in ("recvonly", "sendrecv"):
                    track.receive_started(params)
            if fill_receive_lines:
                for slot in self._send_slots:
                    slot.answered()
            return seam.offer_simulcast(str(self.pc.localDescription.sdp), simulcast)

    def _offered_simulcast(self, sdp: str) -> dict[str, list[str]]:
        # A video m-line the participant offers to send as simulcast (``a=simulcast:send``):
        # its track takes those rids as layers, in the offer's order (lowest first, as
        # browsers list them), and the answer receives them (``a=simulcast:recv``). Returns
        # those rids by mid.
        offered = {
            mid: rids
            for mid, rids in seam.answered_rids(sdp).items()
            if len(rids) > 1
            and (track := self.incoming.get(mid)) is not None
            and track.kind == "video"
            and track.producer is None
        }
        for mid, rids in offered.items():
            self.incoming[mid].set_layers([LayerSpec(rid) for rid in rids])
        # Simulcast signalled by SSRCs (``a=ssrc-group:SIM``, no rids): the layers are
        # told apart by SSRC; nothing in the answer changes.
        for mid, group in seam.ssrc_simulcast(sdp).items():
            track = self.incoming.get(mid)
            if (
                mid not in offered
                and track is not None
                and track.kind == "video"
                and track.producer is None
            ):
                track.set_ssrc_layers(group)
        return offered

    def _relearn(
        self, sending: dict[str, str]
    ) -> list[tuple[RTCRtpTransceiver, IncomingTrack, seam.ReceiveParams]]:
        # A new msid on an m-line: a new publication there, on the same receiver.
        slots = {id(s.transceiver) for s in self._send_slots}
        renewed = []
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid or ""
            track_id = sending.get(mid)
            key = id(transceiver)
            if key in slots:
                if track_id is None:
                    self._recycled.discard(key)
                    continue
                self._recycled.add(key)
            current = self.incoming.get(mid)
            if track_id is None or (current is not None and current.remote_track_id == track_id):
                continue
            track = IncomingTrack(mid, transceiver.kind, track_id, self._send_rtcp)
            params = seam.retarget_receiver(
                transceiver.receiver,
                track.receive_started,
                track.handle_rtp,
                track.handle_rtcp,
                on_level=track.level_handler,
            )
            track.set_negotiated_codecs(seam.negotiated_codecs(transceiver))
            self.incoming[mid] = track
            if self.on_incoming_track is not None:
                self.on_incoming_track(track)
            if params is not None:
                renewed.append((transceiver, track, params))
        return renewed

    def _apply_recycled(self) -> None:
        for slot in self._send_slots:
            transceiver = slot.transceiver
            table = _WITH_RECV if id(transceiver) in self._recycled else _WITHOUT_RECV
            transceiver.direction = table.get(transceiver.direction, transceiver.direction)

    async def add_remote_candidates(self, candidates: list[str]) -> int:
        """Add trickled ICE candidates (``candidate:...`` lines) not seen before; returns how
        many were new. Malformed lines raise ``ValueError``; past ``MAX_REMOTE_CANDIDATES``
        distinct candidates, the rest raise ``MediaError``."""
        self._check_open()
        fresh = [c.removeprefix("a=") for c in candidates]
        fresh = [c for c in dict.fromkeys(fresh) if c not in self._remote_candidates]
        if len(self._remote_candidates) + len(fresh) > MAX_REMOTE_CANDIDATES:
            raise MediaError(f"more than {MAX_REMOTE_CANDIDATES} remote ICE candidates")
        parsed: list[RTCIceCandidate] = []
        for line in fresh:
            try:
                parsed.append(candidate_from_sdp(line.removeprefix("candidate:")))
            except (AssertionError, ValueError, IndexError):  # aiortc asserts on short lines
                raise ValueError(f"malformed ICE candidate {line[:80]!r}") from None
        ice = {
            id(t.receiver.transport.transport): t.receiver.transport.transport
            for t in self.pc.getTransceivers()
        }
        if self.pc.sctp is not None:
            ice[id(self.pc.sctp.transport.transport)] = self.pc.sctp.transport.transport
        for line, candidate in zip(fresh, parsed, strict=True):
            self._remote_candidates.add(line)
            for transport in ice.values():  # max-bundle: one transport carries everything
                await transport.addRemoteCandidate(candidate)
        return len(fresh)

    def use_in_band_data_channels(self, on_channel: Callable[[RTCDataChannel], None]) -> None:
        """Open data channels with the in-band handshake (DCEP) from now on, and hand
        ``on_channel`` every channel the participant opens (clients that announce their
        channels by label, as twilio-video.js does, rather than by negotiated id)."""
        self._in_band_channels = True
        self.pc.on("datachannel", on_channel)

    def _learn_extensions(self, sdp: str) -> None:
        # the id the remote description took: an answer echoes ours, an offer sets its own
        twcc = _TWCC_EXTMAP.search(sdp)
        # The fast receive path reads every extension at the id this description took: a
        # participant's offer numbers them its own way (a browser puts mid where the SFU
        # puts transport-cc), and the SFU's later offers keep those numbers.
        self._ext_ids.learn(sdp)
        if twcc is not None:
            self._twcc_ext_id = int(twcc.group(1))
            for path in self._paths.values():
                path.enable_transport_cc(self._twcc_ext_id, self.bandwidth.on_sent)

    def _prepare_ice(self) -> None:
        # before setLocalDescription, which gathers candidates
        port_range = self.settings.udp_port_range
        addresses = self.settings.host_addresses
        if port_range is None and addresses is None:
            return
        dtls = [t.receiver.transport for t in self.pc.getTransceivers()]
        if self.pc.sctp is not None:
            dtls.append(self.pc.sctp.transport)
        for transport in dtls:
            if addresses is not None:
                seam.restrict_addresses(transport, addresses)
            if port_range is not None:
                seam.restrict_ports(transport, port_range)

    def _adopt(self, track_ids: dict[str, str]) -> None:
        # Runs with no await between setRemote/LocalDescription and here, so aiortc's
        # connect task has not yet started any receiver or sender we take over.
        for transceiver in self.pc.getTransceivers():
            key = id(transceiver)
            if key in self._adopted:
                continue
            self._adopted.add(key)
            mid = transceiver.mid or ""
            track = self._new_incoming(transceiver, track_ids.get(mid))
            self._track_rate_estimate(track)
            self._releases.append(
                seam.take_over_receiver(
                    transceiver.receiver,
                    track.receive_started,
                    track.handle_rtp,
                    track.handle_rtcp,
                    track.handle_stream,
                    track.level_handler,
                )
            )
            self._releases.append(seam.take_over_sender(transceiver.sender, _ignore, _ignore))
            self.incoming[mid] = track
            self._fresh.append((track, transceiver))
        for track, transceiver in self._fresh:
            track.set_negotiated_codecs(seam.negotiated_codecs(transceiver))
        fresh, self._fresh = self._fresh, []
        for track, _ in fresh:
            if self.on_incoming_track is not None:
                self.on_incoming_track(track)
        for transceiver in self.pc.getTransceivers():
            seam.install_fast_receive(
                transceiver.receiver.transport, self.on_rtp_arrival, self._ext_ids
            )
            seam.tap_rtcp(transceiver.receiver.transport, self._on_rtcp_raw)
        if self.pc.sctp is not None:
            seam.harden_ice_input(self.pc.sctp.transport)

    def _with_simulcast(self, sdp: str) -> str:
        # The rids of each simulcast m-line, and which are paused now: a browser sets its
        # encodings active or not from every offer it applies.
        rids: dict[str, tuple[str, ...]] = {}
        paused: dict[str, set[str]] = {}
        for slot in self._publication_slots:
            if not slot.rids or slot.mid is None:
                continue
            rids[slot.mid] = slot.rids
            track = self.incoming.get(slot.mid)
            producer = track.producer if track is not None else None
            if not slot.simulcast:  # one stream on a simulcast m-line: its lowest rid
                paused[slot.mid] = set(slot.rids[1:])
            elif producer is not None and not producer.closed:
                sending = sending_layers(list(producer.layers), producer.wanted_layers)
                paused[slot.mid] = {rid for rid in slot.rids if rid not in sending}
        return seam.offer_simulcast(sdp, rids, paused)

    def _slot_of(self, transceiver: RTCRtpTransceiver) -> PublicationSlot | None:
        return next((s for s in self._publication_slots if s.transceiver is transceiver), None)

    def _new_incoming(
        self, transceiver: RTCRtpTransceiver, remote_track_id: str | None
    ) -> IncomingTrack:
        slot = self._slot_of(transceiver)
        return IncomingTrack(
            transceiver.mid or "",
            transceiver.kind,
            remote_track_id,
            self._send_rtcp,
            layers=slot.simulcast if slot is not None else (),
        )

    # -- sending ---------------------------------------------------------------------

    def _path_for(self, sender: RTCRtpSender) -> seam.SendPath:
        dtls = sender.transport
        path = self._paths.get(id(dtls))
        if path is None:
            path = seam.SendPath(dtls)
            if self._twcc_ext_id:
                path.enable_transport_cc(self._twcc_ext_id, self.bandwidth.on_sent)
            path.set_pacing(self._pacing_bps)
            self._paths[id(dtls)] = path
        return path

    def _send_rtcp(self, data: bytes) -> bool:
        for transceiver in self.pc.getTransceivers():
            return self._path_for(transceiver.sender).send_rtcp(data)
        return False

    def add_consumer(self, producer: Producer, consumer_id: str) -> Consumer:
        """A consumer for ``producer`` on this transport; an SFU offer is then needed.

        Its send-only m-line is assigned at the next ``create_offer``, not now: aiortc would
        otherwise hand a fresh, mid-less transceiver to the first m-line of the same kind
        in an offer from the participant, turning the subscription into a publication. The
        m-line is one a closed consumer left (``SendSlot``), else a new one.
        """
        self._check_open()
        capability = codec_capability(producer.codec)
        holder: dict[str, SendSlot] = {}
        consumer = Consumer(producer, consumer_id, lambda: self._consumer_path(holder))
        self.consumers[consumer_id] = consumer
        self._pending.append((consumer, capability, holder))

        def closed(_: Any) -> None:
            self.consumers.pop(consumer_id, None)
            self._pending = [p for p in self._pending if p[0] is not consumer]
            slot = holder.pop("slot", None)
            if slot is not None:
                slot.detach(consumer)  # its feedback goes nowhere now; the m-line is free
                self._negotiation_needed()
            self.reallocate()  # its share goes to the others

        # not when this transport closes its consumers: it is tearing everything down
        consumer.on_close(closed, parent=self)
        self._negotiation_needed()
        self.reallocate()
        return consumer

    def _consumer_path(self, holder: dict[str, SendSlot]) -> seam.SendPath | None:
        slot = holder.get("slot")
        return None if slot is None else self._path_for(slot.transceiver.sender)

    def _materialize_consumers(self) -> None:
        pending, self._pending = self._pending, []
        for consumer, capability, holder in pending:
            kind = consumer.producer.kind
            slot = next((s for s in self._send_slots if s.fits(kind, capability)), None)
            if slot is None:
                slot = self._new_send_slot(kind, capability)
                slot.attach(consumer, reused=False)
            else:
                slot.attach(consumer, reused=True)
            holder["slot"] = slot

    def _new_send_slot(self, kind: str, capability: RTCRtpCodecCapability) -> SendSlot:
        transceiver = self.pc.addTransceiver(kind, direction="sendonly")
        transceiver.setCodecPreferences([capability])
        self._adopted.add(id(transceiver))
        slot = SendSlot(transceiver, capability)
        self._releases.append(
            seam.take_over_sender(transceiver.sender, slot.on_start, slot.on_rtcp)
        )
        self._releases.append(
            seam.take_over_receiver(transceiver.receiver, _ignore, _ignore, _ignore)
        )
        self._send_slots.append(slot)
        return slot

    def create_data_channel(
        self,
        label: str,
        *,
        ordered: bool,
        max_retransmits: int | None,
        max_packet_life_time: int | None = None,
    ) -> RTCDataChannel:
        """A negotiated data channel towards the participant; renegotiation may be needed
        (first one).

        Every SFU channel is *negotiated*: the SFU picks the SCTP stream id (``channel.id``)
        and tells the participant over signaling, which opens its side with the same id.
        No in-band open handshake, so the SFU never waits on, or has to match up, channels
        the participant announces.
        """
        self._check_open()
        first = self.pc.sctp is None
        if self._in_band_channels:
            channel = self.pc.createDataChannel(
                label,
                ordered=ordered,
                maxRetransmits=max_retransmits,
                maxPacketLifeTime=max_packet_life_time,
            )
        else:
            channel = self._negotiated_channel(
                label, ordered, max_retransmits, max_packet_life_time
            )
        if first:
            seam.keep_sctp_transport(self.pc)
            self._negotiation_needed()
        return channel

    def _negotiated_channel(
        self,
        label: str,
        ordered: bool,
        max_retransmits: int | None,
        max_packet_life_time: int | None,
    ) -> RTCDataChannel:
        for _ in range(DATA_CHANNEL_IDS):
            stream_id = self._next_data_id
            # Cycle rather than reuse the lowest free id: a just-closed id may still be
            # closing on the participant's side.
            self._next_data_id = (stream_id + 1) % DATA_CHANNEL_IDS
            if stream_id in self._data_ids:
                continue
            try:
                channel = self.pc.createDataChannel(
                    label,
                    ordered=ordered,
                    maxRetransmits=max_retransmits,
                    maxPacketLifeTime=max_packet_life_time,
                    negotiated=True,
                    id=stream_id,
                )
            except ValueError:  # the participant opened a channel of its own on this id
                continue
            self._data_ids.add(stream_id)
            channel.on("close", functools.partial(self._data_ids.discard, stream_id))
            return channel
        raise MediaError(f"transport {self.id} has no free data channel id")

    def _negotiation_needed(self) -> None:
        if self.on_negotiation_needed is not None:
            self.on_negotiation_needed()

    # -- publication slots (what signaling needs to let a participant publish) --------

    def add_publication_slot(
        self, kind: str, codec: str | None = None, *, simulcast: Sequence[LayerSpec] = ()
    ) -> PublicationSlot:
        """A receive-only m-line for one track the participant will publish, in the next
        ``create_offer``; ``codec`` (e.g. ``H264``) restricts the m-line to that codec.

        ``simulcast`` (video): the layers to receive, lowest first, each named by its rid,
        with the picture size the participant announced. The offer then asks for them
        (``a=rid:<rid> recv``, ``a=simulcast:recv``); the answer says which it sends, and
        those become the producer's layers (one layer, as without simulcast, if it sends
        none). Raises ValueError for rids outside RFC 8851's syntax, repeated, or on audio.

        The m-line of an unpublished track (a closed slot) of the same kind and codec
        restriction is reused, else one is added: aiortc keeps every m-line in every
        description, so a participant that publishes and unpublishes would otherwise grow
        by one m-line per publication until its descriptions no longer fit in a signaling
        frame. A reused m-line keeps its mid; its new ``IncomingTrack`` is made at the next
        ``create_offer`` and starts once the answer sends on it.

        Call it right before ``create_offer``: a transceiver added while aiortc awaits inside
        an offer/answer would be taken over by the engine before it has a mid.
        """
        self._check_open()
        rids = [spec.name for spec in simulcast]
        if rids and (
            kind != "video"
            or len(set(rids)) != len(rids)
            or not all(seam.RID.match(rid) for rid in rids)
        ):
            raise ValueError(f"bad simulcast layers for {kind}: {rids!r}")
        # the same rids first, so a one-stream publication leaves simulcast m-lines free
        fitting = [s for s in self._publication_slots if s.fits(kind, codec, rids)]
        for slot in sorted(fitting, key=lambda s: s.rids != tuple(rids)):
            slot.reopen(simulcast)
            return slot
        transceiver = self.pc.addTransceiver(kind, direction="recvonly")
        if codec is not None:
            transceiver.setCodecPreferences(codec_preferences(kind, codec))
        slot = PublicationSlot(transceiver, codec, self._publication_closed, simulcast)
        self._publication_slots.append(slot)
        return slot

    def _publication_closed(self, slot: PublicationSlot) -> None:
        # Free the ended track now: the m-line waits, inactive, for the next publication.
        transceiver = slot.transceiver
        mid = slot.mid
        if mid is not None and id(transceiver) in self._adopted:
            seam.retarget_receiver(transceiver.receiver, _ignore, _ignore, _ignore)
            ended = self.incoming.pop(mid, None)
            if ended is not None and ended.rate_estimator is not None:
                self.bandwidth.drop_track_estimator(ended.rate_estimator)
        self._restarts = [r for r in self._restarts if r[0] is not transceiver]
        self._negotiation_needed()

    def _reopen_publications(self) -> None:
        # A fresh track on each reused m-line, reported with the tracks of new m-lines.
        for slot in self._publication_slots:
            mid = slot.mid
            if not slot.reopened or mid is None:
                continue
            slot.reopened = False
            transceiver = slot.transceiver
            track = self._new_incoming(transceiver, None)
            self._track_rate_estimate(track)
            params = seam.retarget_receiver(
                transceiver.receiver,
                track.receive_started,
                track.handle_rtp,
                track.handle_rtcp,
                track.handle_stream,
                track.level_handler,
            )
            self.incoming[mid] = track
            self._fresh.append((track, transceiver))
            if params is not None:
                self._restarts.append((transceiver, track, params))

    # -- allocation ------------------------------------------------------------------

    def _overused(self) -> bool:
        last = self.bandwidth.downlink.last_overuse
        return time.monotonic() - last < OVERUSE_RECENT_S

    def _proven_bps(self) -> int | None:
        # only for a participant ``probe`` can probe: for any other the estimate is all
        # there is to step up on
        if not self._twcc_ext_id or not self.bandwidth.feedback_received:
            return None
        return self.bandwidth.downlink.proven_bps

    def _available_outgoing(self) -> int | None:
        estimate = self.estimate
        return None if estimate is None else estimate.available_outgoing_bps

    def reallocate(self) -> None:
        """Share the downlink estimate over the consumers again, and apply it."""
        if self.closed:
            return
        succeeded = self.bandwidth.downlink.probes.succeeded
        if succeeded != self._probes_seen:
            # a probe got through: the estimate it lifted is proven, the step up it was for
            # is taken now rather than after the allocator's hold
            self._probes_seen = succeeded
            self.allocation.allocator.trust_estimate()
        result = self.allocation.run()
        self._pace()
        self._probe_target = target = self.allocation.probe_target()
        if target is None:
            self._held_back_since = None
        elif self._held_back_since is None or self.allocation.stepped_down:
            # held back since now, also when it already was and a track just stepped down:
            # the link was found short a moment ago, and a probe at once (its step up held
            # back long enough already) went into a queue still full, a capped
            # subscriber's pictures frozen for the loss it added
            self._held_back_since = time.monotonic()
        self._maybe_probe()
        # Publisher caps depend only on the shares: recompute them (over every transport of
        # the room) only when one of this subscriber's changed.
        shares = {cid: allocation.share_bps for cid, allocation in result.items()}
        if shares != self._shares:
            self._shares = shares
            if self.on_allocated is not None:
                self.on_allocated(self)

    def _pace(self) -> None:
        # Pacing only while the estimate binds: then the link is the limit, and bursts the
        # bottleneck's queue would drop are better spread here (audio first).
        estimate = self._available_outgoing() if self.allocation.congested else None
        if estimate is not None:
            # what the allocation chose to send: more than the estimate when it kept tracks
            # on within its leeway (``allocator.KEEP_ON_FRACTION``), and pacing that under it
            # would only queue it here
            allocated = sum(a.bitrate_bps for a in self.allocation.last.values())
            estimate = max(estimate, allocated)
            # A probe paced at the estimate could show no more than the estimate: it would
            # "succeed" without lifting it, and a step up just above it waited for good
            # (libwebrtc's pacer sends a probe cluster at the probe's own rate).
            probe = self.bandwidth.downlink.probe
            if probe is not None and time.monotonic() < probe.until:
                estimate = max(estimate, probe.bitrate_bps)
        rate = None if estimate is None else int(estimate * PACING_FACTOR)
        if rate != self._pacing_bps:
            self._pacing_bps = rate
            for path in self._paths.values():
                path.set_pacing(rate)

    def _maybe_probe(self) -> None:
        # Held back for a while (the estimator's own ramp-up had its chance): padding shows
        # whether the next step would get through, before it is taken. Also checked with
        # each feedback tick, so the next probe follows one that got through as soon as the
        # probe controller allows, not at the next allocation pass.
        target, since = self._probe_target, self._held_back_since
        if target is not None and since is not None and time.monotonic() - since >= PROBE_AFTER_S:
            self.probe(target)

    # -- RTCP ------------------------------------------------------------------------

    def _start_rtcp(self) -> None:
        if not self._rtcp_started and not self.closed:
            self._rtcp_started = True
            # Feedback on the loop's shared timer: ten wake-ups a second for the whole room,
            # not ten per transport (a task per transport cost the SFU about a tenth more CPU
            # per forwarded packet at K=8). The reports stay a task per transport, a second
            # after the previous one's end: on a shared timer, ticking exactly on the second,
            # the receive-side estimate of a publisher behind a capped link overshot the cap
            # in a third of the runs of its test (tests/integration/media/test_capped_publisher.py),
            # for a reason not found; at one wake-up a second per transport they cost little.
            self._tasks.spawn(self._run_rtcp(), name=f"rtcp {self.id}")
            self._tasks.every(FEEDBACK_INTERVAL_S, self._feedback_tick)

    async def _run_rtcp(self) -> None:
        interval = self.settings.sender_report_interval_s
        while True:
            await asyncio.sleep(interval)
            self._rtcp_tick()

    def _feedback_tick(self) -> None:
        # transport-cc feedback to the participant and the estimate, ten times a second
        try:
            for packet in self.bandwidth.feedback_packets():
                self._send_rtcp(packet)
            if self.bandwidth.uplink_twcc:
                self._drop_rate_estimates()
            self._send_remb_decreases()
            self.bandwidth.tick(time.monotonic())
            self.bandwidth.refresh()
            self._maybe_probe()
        except Exception:
            logger.exception("bandwidth feedback of %s failed", self.id)

    def _rtcp_tick(self) -> None:
        # reports once a second (``sender_report_interval_s``), then allocation
        try:
            self.send_rtcp_reports()
        except Exception:
            logger.exception("RTCP reports of %s failed", self.id)
        try:
            self.reallocate()  # a step up that waited for its hold time happens here
        except Exception:
            logger.exception("allocation of %s failed", self.id)

    def base_rtt_s(self) -> float | None:
        """The link's round-trip time without what late reports add: the least of the
        consumers' base RTTs (``Consumer.base_rtt_s``), None before any report gave one."""
        rtts = [r for c in list(self.consumers.values()) if (r := c.base_rtt_s()) is not None]
        return min(rtts) if rtts else None

    def send_rtcp_reports(self) -> None:
        """SR to the participant for every consumer; RR (and REMB for video) for its tracks."""
        rtts: list[float] = []
        jitters: list[float] = []
        for consumer in list(self.consumers.values()):
            consumer.send_sender_report()
            if consumer.rtt_s is not None:
                rtts.append(consumer.rtt_s)
            if consumer.jitter_s is not None:
                jitters.append(consumer.jitter_s)
        self.bandwidth.set_link_figures(
            max(rtts) if rtts else None, max(jitters) if jitters else None
        )
        now = time.monotonic()
        for track in list(self.incoming.values()):
            if track.producer is not None:
                if track.rate_estimator is not None:
                    track.rate_estimator.on_counts(track.packets_lost, track.packets_received, now)
                self._send_track_report(track)

    def _send_track_report(self, track: IncomingTrack) -> None:
        # a compound packet starts with a report (RFC 3550 6.1)
        report = track.receiver_report()
        if report is None:
            return
        if track.kind == "video":
            bitrate = self.bandwidth.remb_bitrate(track.rate_estimator)
            self._remb_sent[track.mid] = bitrate
            report += track.bitrate_hint(bitrate) or b""
        self._send_rtcp(report)

    def _send_remb_decreases(self) -> None:
        # a lower estimate or cap goes out at once (as libwebrtc does), a higher one with
        # the next regular report
        for track in list(self.incoming.values()):
            if track.producer is None or track.kind != "video":
                continue
            sent = self._remb_sent.get(track.mid)
            if sent is not None and self.bandwidth.remb_bitrate(track.rate_estimator) < 0.97 * sent:
                self._send_track_report(track)

    # -- lifetime --------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise MediaClosed(f"transport {self.id} is closed")

    async def _on_close(self) -> None:
        """Close consumers and producers (they do not call back), then the peer connection."""
        consumers, self.consumers = self.consumers, {}
        for consumer in consumers.values():
            consumer.close_from_parent(self)
        self._pending = []
        producers, self.producers = self.producers, {}
        for producer in producers.values():
            producer.close_from_parent(self)
        for release in self._releases:
            with contextlib.suppress(Exception):
                release()
        for path in self._paths.values():
            path.close()
        await self._tasks.close()
        await self.pc.close()


def _ignore(*_: Any) -> None:
    return None
