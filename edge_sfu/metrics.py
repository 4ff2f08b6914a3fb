"""Prometheus metrics of the SFU, read from the live rooms and media counters at scrape time.

``SfuCollector`` is a ``prometheus_client`` custom collector: nothing is counted twice on
the forwarding path; each scrape walks the live rooms (``SfuContext.rooms``) and the media
counters (``edge_sfu.stats.track_stats``) once. Series are labelled by room SID only, so a
scrape reveals no names or identities; ``label_names`` adds each room's unique name.

Counters stay monotonic although tracks come and go: what a track or subscriber had counted
when it was last seen is kept in its room's totals after it ends (the part counted between
that scrape and its end is lost, which Prometheus tolerates better than a counter going
down). A room's series end with the room.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .context import SFU_CONTEXT
from .rooms import Room
from .stats import TrackStats, track_stats

__all__ = ["SfuCollector"]


@dataclass(slots=True)
class _Sums:
    """The counters summed per room (and kind of media)."""

    bytes_received: int = 0
    packets_received: int = 0
    keyframe_requests_sent: int = 0
    bytes_sent: int = 0
    packets_sent: int = 0
    nacks_received: int = 0
    plis_received: int = 0
    retransmitted: int = 0
    layer_switches: int = 0
    packets_lost: int = 0

    def add(self, other: _Sums) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


#: (metric name, help, _Sums field). Names get ``_total`` from the exposition format.
COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("edge_received_bytes", "RTP payload bytes received from publishers.", "bytes_received"),
    ("edge_received_packets", "RTP packets received from publishers.", "packets_received"),
    ("edge_sent_bytes", "RTP payload bytes forwarded to remote subscribers.", "bytes_sent"),
    ("edge_sent_packets", "RTP packets forwarded to remote subscribers.", "packets_sent"),
    ("edge_nacks_received", "NACKs received from subscribers.", "nacks_received"),
    ("edge_plis_received", "PLIs and FIRs received from subscribers.", "plis_received"),
    ("edge_retransmitted_packets", "Packets resent from cache on NACK.", "retransmitted"),
    ("edge_layer_switches", "Switches of a subscriber to another layer.", "layer_switches"),
    (
        "edge_keyframe_requests_sent",
        "Keyframe requests sent to publishers.",
        "keyframe_requests_sent",
    ),
    (
        "edge_subscriber_packets_lost",
        "Packets subscribers reported lost (RTCP receiver reports, cumulative).",
        "packets_lost",
    ),
)

_Key = tuple[str, str]  # (room SID, kind)


class SfuCollector(Collector):
    """Metrics of the SFU application ``app`` (the one ``create_sfu_app`` made).

    ``label_names`` is asked at every scrape (a live setting): when it returns True, series
    also carry the room's unique name as ``room_name``.
    """

    def __init__(self, app: web.Application, label_names: Callable[[], bool] = bool) -> None:
        self._app = app
        self._label_names = label_names
        #: Last counters seen of each producer / consumer, by (room SID, kind) and object.
        self._seen: dict[_Key, dict[str, _Sums]] = {}
        #: Counters of ended producers and consumers, by (room SID, kind).
        self._retired: dict[_Key, _Sums] = {}

    def describe(self) -> Iterable[Metric]:
        """No description: registering must not walk the live state."""
        return []

    def collect(self) -> Iterator[Metric]:
        """One scrape: gauges of the rooms, counters and quality of the media."""
        context = self._app.get(SFU_CONTEXT)
        rooms = [] if context is None else context.rooms.live_rooms()
        names = {room.sid: room.unique_name for room in rooms}
        with_names = bool(self._label_names())
        labels = ["room_sid", "room_name"] if with_names else ["room_sid"]

        def room_labels(room_sid: str, *extra: str) -> list[str]:
            base = [room_sid, names.get(room_sid, "")] if with_names else [room_sid]
            return [*base, *extra]

        yield from self._room_gauges(rooms, labels, room_labels)

        stats = track_stats(self._app)
        totals = self._totals(stats, set(names))
        for name, help_text, attr in COUNTERS:
            family = CounterMetricFamily(name, help_text, labels=[*labels, "kind"])
            for (room_sid, kind), sums in sorted(totals.items()):
                family.add_metric(room_labels(room_sid, kind), getattr(sums, attr))
            yield family
        yield from self._quality(stats, labels, room_labels)
        yield from self._upstream(stats, labels, room_labels)
        yield from self._bandwidth(stats, labels, room_labels)
        if context is not None:
            yield GaugeMetricFamily(
                "edge_callback_outbox",
                "Status callbacks waiting for delivery.",
                value=context.store.outbox_size(),
            )

    def _totals(self, stats: TrackStats, live_rooms: set[str]) -> dict[_Key, _Sums]:
        seen: dict[_Key, dict[str, _Sums]] = {}
        for track_sid, track in stats.tracks.items():
            key = (track.room_sid, track.kind)
            objects = seen.setdefault(key, {})
            objects[track_sid] = _Sums(
                bytes_received=track.bytes_received,
                packets_received=track.packets_received,
                keyframe_requests_sent=track.keyframe_requests_sent,
            )
            for sub in track.subscribers:
                objects[f"{track_sid}>{sub.participant_sid}"] = _Sums(
                    bytes_sent=sub.bytes_sent,
                    packets_sent=sub.packets_sent,
                    nacks_received=sub.nacks_received,
                    plis_received=sub.plis_received,
                    retransmitted=sub.retransmitted,
                    layer_switches=sub.layer_switches,
                    packets_lost=sub.packets_lost,
                )
        for key, before in self._seen.items():
            now = seen.get(key, {})
            for obj, sums in before.items():
                if obj not in now:
                    self._retired.setdefault(key, _Sums()).add(sums)
        self._seen = seen
        self._retired = {k: v for k, v in self._retired.items() if k[0] in live_rooms}
        totals: dict[_Key, _Sums] = {}
        for key in {*seen, *self._retired}:
            total = _Sums()
            total.add(self._retired.get(key, _Sums()))
            for sums in seen.get(key, {}).values():
                total.add(sums)
            totals[key] = total
        return totals

    def _quality(
        self,
        stats: TrackStats,
        labels: list[str],
        room_labels: Callable[..., list[str]],
    ) -> Iterator[Metric]:
        """The worst loss, jitter and RTT any subscriber reported, per room and kind."""
        worst: dict[str, dict[_Key, float]] = {"loss": {}, "jitter": {}, "rtt": {}}
        for track in stats.tracks.values():
            key = (track.room_sid, track.kind)
            for sub in track.subscribers:
                for name, value in (
                    ("loss", sub.fraction_lost),
                    ("jitter", sub.jitter_s),
                    ("rtt", sub.rtt_s),
                ):
                    if value is not None:
                        worst[name][key] = max(worst[name].get(key, 0.0), value)
        for name, metric, help_text in (
            ("loss", "edge_subscriber_loss_ratio", "Share of packets lost (0..1)"),
            ("jitter", "edge_subscriber_jitter_seconds", "Interarrival jitter"),
            ("rtt", "edge_subscriber_rtt_seconds", "Round-trip time"),
        ):
            family = GaugeMetricFamily(
                metric,
                f"{help_text}: the worst any subscriber's latest RTCP receiver report gives "
                "(absent until a subscriber reported).",
                labels=[*labels, "kind"],
            )
            for (room_sid, kind), value in sorted(worst[name].items()):
                family.add_metric(room_labels(room_sid, kind), value)
            yield family

    def _upstream(
        self,
        stats: TrackStats,
        labels: list[str],
        room_labels: Callable[..., list[str]],
    ) -> Iterator[Metric]:
        """What the SFU measures of the publishers' streams, per room and kind."""
        lost = GaugeMetricFamily(
            "edge_publisher_packets_lost",
            "Packets missing from what publishers sent, for the tracks published now "
            "(expected less received: a late or retransmitted packet takes its loss back).",
            labels=[*labels, "kind"],
        )
        jitter = GaugeMetricFamily(
            "edge_publisher_jitter_seconds",
            "Interarrival jitter of what publishers send, as the SFU measures it: the worst "
            "track's (absent without remote publishers).",
            labels=[*labels, "kind"],
        )
        lost_sum: dict[_Key, int] = {}
        worst: dict[_Key, float] = {}
        for track in stats.tracks.values():
            key = (track.room_sid, track.kind)
            lost_sum[key] = lost_sum.get(key, 0) + track.packets_lost
            if track.jitter_s is not None:
                worst[key] = max(worst.get(key, 0.0), track.jitter_s)
        for (room_sid, kind), count in sorted(lost_sum.items()):
            lost.add_metric(room_labels(room_sid, kind), count)
        for (room_sid, kind), seconds in sorted(worst.items()):
            jitter.add_metric(room_labels(room_sid, kind), seconds)
        yield lost
        yield jitter

    def _bandwidth(
        self,
        stats: TrackStats,
        labels: list[str],
        room_labels: Callable[..., list[str]],
    ) -> Iterator[Metric]:
        """The lowest bandwidth estimates per room and kind: the subscriber the SFU may send
        least to, and the publisher that can send least."""
        outgoing: dict[_Key, int] = {}
        incoming: dict[_Key, int] = {}
        for track in stats.tracks.values():
            key = (track.room_sid, track.kind)
            if track.available_incoming_bps is not None:
                incoming[key] = min(
                    incoming.get(key, track.available_incoming_bps), track.available_incoming_bps
                )
            for sub in track.subscribers:
                if sub.available_outgoing_bps is not None:
                    outgoing[key] = min(
                        outgoing.get(key, sub.available_outgoing_bps), sub.available_outgoing_bps
                    )
        for metric, values, help_text in (
            (
                "edge_available_outgoing_bps",
                outgoing,
                "Downlink estimate (bit/s) of the subscriber the SFU may send least to",
            ),
            (
                "edge_available_incoming_bps",
                incoming,
                "Uplink estimate (bit/s) of the publisher that can send least",
            ),
        ):
            family = GaugeMetricFamily(
                metric,
                f"{help_text} (absent before any estimate).",
                labels=[*labels, "kind"],
            )
            for (room_sid, kind), value in sorted(values.items()):
                family.add_metric(room_labels(room_sid, kind), value)
            yield family

    def _room_gauges(
        self, rooms: list[Room], labels: list[str], room_labels: Callable[..., list[str]]
    ) -> Iterator[Metric]:
        """Rooms, and the participants and tracks in each."""
        yield GaugeMetricFamily("edge_rooms", "Rooms in progress.", value=len(rooms))
        participants = GaugeMetricFamily(
            "edge_participants", "Participants connected to a room.", labels=labels
        )
        published = GaugeMetricFamily(
            "edge_published_tracks", "Tracks published in a room.", labels=[*labels, "kind"]
        )
        subscribed = GaugeMetricFamily(
            "edge_subscribed_tracks",
            "Subscriptions in a room (one per subscriber and track).",
            labels=[*labels, "kind"],
        )
        for room in rooms:
            connected = [p for p in room.participants.values() if p.connected]
            participants.add_metric(room_labels(room.sid), len(connected))
            for kind in ("audio", "video", "data"):
                pub = sum(1 for p in connected for t in p.published.values() if t.kind == kind)
                sub = sum(1 for p in connected for t in p.subscribed.values() if t.kind == kind)
                published.add_metric(room_labels(room.sid, kind), pub)
                subscribed.add_metric(room_labels(room.sid, kind), sub)
        yield participants
        yield published
        yield subscribed
