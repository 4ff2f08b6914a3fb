"""``MediaChannels``: the media-signaling data channels of one twilio-video.js participant.

The unit computes what they carry for its own clients already: the dominant speaker and
network quality (``signaling.signals.RoomSignals``), per-subscriber allocation with
priorities, switch-off and render sizes (``media.allocation``). Here those figures go to
the SDK in its shapes (``msp``), and the SDK's priorities and render hints reach the
subscriber's allocation. Network quality is answered per request, as the SDK expects (it
sends its next inputs a second after each answer). Publisher hints tell an SDK publisher
which of its simulcast encodings some subscriber takes, from the same per-layer wanted
state the unit's own clients get as ``send-layers``: it pauses the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from ...media.layers import sending_layers
from . import msp
from .rsp import TokenBucket

if TYPE_CHECKING:
    from ...media import DataChannel, Producer
    from ..signals import RoomSignals
    from .media import TwilioMedia

logger = logging.getLogger(__name__)

#: Messages a client may send per second on all its channels (a burst twice that); more
#: are dropped unanswered.
MESSAGES_PER_SECOND: Final = 20.0
#: A flood's drops are logged once per this many (the first included), not one by one.
DROPS_LOGGED_EVERY: Final = 100
#: A publisher hint the SDK could not apply yet (it did not know the track SID, or its
#: connection was renegotiating) is sent again after this long, at most HINT_RETRIES times.
HINT_RETRY_S: Final = 1.0
HINT_RETRIES: Final = 10


class MediaChannels:
    """The channels one participant asked for and the unit serves (see the module doc)."""

    def __init__(
        self,
        media: TwilioMedia,
        signals: RoomSignals,
        participants: Callable[[], Iterable[str]],
    ) -> None:
        self._media = media
        self._signals = signals
        self._participants = participants
        self.sid = media.participant_sid
        self.channels: dict[str, DataChannel] = {}
        #: Channels whose client side said ``ready``: only these are sent to.
        self.ready: set[str] = set()
        self._rate = TokenBucket(MESSAGES_PER_SECOND)
        #: Messages refused (answered with an error; the log says why).
        self.refused = 0
        #: Messages dropped unanswered for coming faster than ``MESSAGES_PER_SECOND``
        #: (logged at the first and every ``DROPS_LOGGED_EVERY``-th).
        self.dropped = 0
        #: Publisher hints: the simulcast publications they steer (by track SID), the
        #: encodings each was last told to send, the last request's number, retries left.
        self._hinted: dict[str, Producer] = {}
        self.hints: dict[str, tuple[bool, ...]] = {}
        self._hint_ref = 0
        self._hint_retries: dict[str, int] = {}
        #: Publisher hint results by track SID, the latest of each (``OK`` once applied).
        self.hint_results: dict[str, str] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """The open channels, for ``media_signaling``."""
        return tuple(self.channels)

    def open(self, names: frozenset[str], room_sid: str) -> None:
        """Open the channels asked for (once; a resumed session keeps them)."""
        for name in msp.CHANNELS:
            if name not in names or name in self.channels:
                continue
            channel = self._media.transport.create_data_channel(
                name, ordered=True, max_retransmits=None
            )
            self.channels[name] = channel
            channel.on("message", lambda data, name=name: self._on_message(name, data))
        if msp.ACTIVE_SPEAKER in self.channels:
            self._signals.listen(
                self.sid,
                room_sid,
                self._speaker_changed,
                dominant_speaker=True,
                network_quality=None,
            )
        self._media.on_switched = self._switched

    # -- sending -----------------------------------------------------------------------

    def send(self, name: str, body: dict[str, Any]) -> bool:
        """Send ``body`` on channel ``name`` if the client is listening there."""
        channel = self.channels.get(name)
        if channel is None or name not in self.ready or channel.readyState != "open":
            return False
        try:
            channel.send(msp.json_text(body))
        except Exception:  # closing underneath: the next ready sends the state again
            return False
        return True

    def _speaker_changed(self, message: dict[str, Any]) -> None:
        # a RoomSignals listener: the unit's own protocol message, in the SDK's shape
        self.send(msp.ACTIVE_SPEAKER, msp.active_speaker_message(message.get("participant_sid")))

    def _switched(self, track_sid: str, off: bool) -> None:
        # the allocation switched a subscription off or on
        if off:
            self.send(msp.TRACK_SWITCH_OFF, msp.switch_off_message(off=[track_sid]))
        else:
            self.send(msp.TRACK_SWITCH_OFF, msp.switch_off_message(on=[track_sid]))

    def publishing(self, track_sid: str, producer: Producer) -> None:
        """An SDK publication with simulcast layers: with the ``publisher_hints`` channel,
        the publisher is told which encodings to send each time that changes."""
        if msp.PUBLISHER_HINTS not in self.channels or len(producer.layers) < 2:
            return
        self._hinted[track_sid] = producer
        producer.on_wanted_layers = lambda wanted: self._hint(track_sid)
        self._hint(track_sid)

    def _hint(self, track_sid: str, *, again: bool = False) -> None:
        producer = self._hinted.get(track_sid)
        if producer is None or producer.closed:
            self._hinted.pop(track_sid, None)
            self.hints.pop(track_sid, None)
            return
        names = list(producer.layers)
        sending = sending_layers(names, producer.wanted_layers)
        enabled = tuple(name in sending for name in names)
        # a consumer switching layers changes the wanted set twice; the lowest layer runs
        # anyway, so what to send often stays the same
        if not again and self.hints.get(track_sid) == enabled:
            return
        if not again:
            self._hint_retries[track_sid] = HINT_RETRIES
        self.hints[track_sid] = enabled
        self._send_hints([(track_sid, enabled)])

    def _hint_again(self, track_sid: str) -> None:
        self._hint(track_sid, again=True)

    def _send_hints(self, hints: list[tuple[str, tuple[bool, ...]]]) -> None:
        if hints:
            self._hint_ref += 1
            self.send(msp.PUBLISHER_HINTS, msp.publisher_hints_message(self._hint_ref, hints))

    def _hint_results(self, results: tuple[tuple[str, str], ...]) -> None:
        for track_sid, result in results:
            if track_sid not in self._hinted:
                continue
            self.hint_results[track_sid] = result
            left = self._hint_retries.get(track_sid, 0)
            if result in msp.HINT_RETRY_RESULTS and left > 0:
                self._hint_retries[track_sid] = left - 1
                asyncio.get_running_loop().call_later(HINT_RETRY_S, self._hint_again, track_sid)

    def _on_ready(self, name: str) -> None:
        # the client listens from now on: what it may have missed
        self.ready.add(name)
        if name == msp.ACTIVE_SPEAKER:
            speaker = self._signals.dominant_speaker(self._media.router.room_id)
            if speaker is not None:
                self.send(name, msp.active_speaker_message(speaker))
        elif name == msp.PUBLISHER_HINTS:
            self._send_hints(list(self.hints.items()))
        elif name == msp.TRACK_SWITCH_OFF:
            off = [sid for sid, c in self._media.consumers.items() if c.switched_off]
            if off:
                self.send(name, msp.switch_off_message(off=off))

    # -- receiving ---------------------------------------------------------------------

    def _on_message(self, name: str, data: object) -> None:
        # aiortc calls this from its SCTP task: nothing may escape
        if not self._rate.allow():
            self.dropped += 1
            if self.dropped % DROPS_LOGGED_EVERY == 1:
                logger.info(
                    "participant %s: %d message(s) dropped so far for coming faster than %g "
                    "a second (the last on the %s channel)",
                    self.sid,
                    self.dropped,
                    MESSAGES_PER_SECOND,
                    name,
                )
            return
        try:
            if not isinstance(data, str | bytes):
                raise msp.MspError("message must be text")
            self.handle(name, msp.parse(name, data))
        except msp.MspError as exc:
            self.refused += 1
            logger.info("participant %s, %s channel: %s", self.sid, name, exc)
            self.send(name, msp.error_message(str(exc)))
        except Exception:
            self.refused += 1
            logger.exception("participant %s: %s message failed", self.sid, name)

    def handle(self, name: str, message: msp.Message) -> None:
        """Act on one parsed message of channel ``name``; raises ``MspError``."""
        match message:
            case msp.Ready():
                self._on_ready(name)
            case msp.QualityRequest():
                self.ready.add(name)  # its first inputs may come before ready is seen
                if message.available_send_bps is not None:
                    self._media.transport.report_sender_estimate(message.available_send_bps)
                self.send(name, self._quality(message))
            case msp.TrackPriority(track=track, priority=priority):
                consumer = self._media.consumers.get(track)
                if consumer is None:
                    raise msp.MspError(f"not subscribed to {track}")
                transport = self._media.transport
                transport.allocation.set_priority(consumer.id, priority)
                transport.reallocate()
            case msp.HintResults(results=results):
                self._hint_results(results)
            case msp.ClientReset(track=track):
                if track not in self._hinted:
                    raise msp.MspError(f"not a simulcast publication: {track}")
                self._hint(track, again=True)  # the SDK went back to its own encodings
            case msp.RenderHints(id=ref, hints=hints):
                answers = [(h.track, self._render_hint(h)) for h in hints]
                self._media.transport.reallocate()
                self.send(name, msp.render_hints_response(ref, answers))

    def _render_hint(self, hint: msp.RenderHint) -> str:
        if hint.error is not None:
            logger.info("participant %s: render hint for %s: %s", self.sid, hint.track, hint.error)
            return msp.INVALID_RENDER_HINT
        consumer = self._media.consumers.get(hint.track)
        if consumer is None or consumer.kind != "video":
            return msp.UNKNOWN_TRACK
        if hint.enabled is not None:
            self._media.transport.allocation.set_switched_off(consumer.id, not hint.enabled)
        if hint.size is not None:
            width, height = hint.size
            if width == 0 or height == 0:
                consumer.set_preferred_size(None, None)
            else:
                consumer.set_preferred_size(width, height)
        return msp.OK

    def _quality(self, request: msp.QualityRequest) -> dict[str, Any]:
        levels = self._signals.quality
        remotes = {
            sid: levels[sid] for sid in self._participants() if sid != self.sid and sid in levels
        }
        return msp.network_quality_message(levels.get(self.sid), remotes, request)
