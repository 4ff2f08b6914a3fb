"""What every consumer shares: which layer it gets, and switching on a keyframe."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from edge_common.lifecycle import Closeable
from edge_sfu.media.errors import UnsupportedCodec
from edge_sfu.media.layers import LayerSpec, choose_layer, ordered_layers
from edge_sfu.media.packet import MediaPacket
from edge_sfu.media.producer import Producer

logger = logging.getLogger(__name__)

#: A consumer still waiting for a keyframe on its layer asks again this often (seconds).
KEYFRAME_RETRY_S = 2.0
#: A layer that brought no packet for this long is not flowing (seconds): its publisher
#: paused it or its uplink cannot carry it.
LAYER_SILENT_S = 1.0


class ConsumerBase(Closeable):
    """One subscriber's copy of a producer's media.

    The consumer follows one layer (``current_layer``). When the subscriber's render size
    calls for another (``target_layer``), it asks the producer for a keyframe on the target
    and switches at the first packet where a decoder can start. The render size says the
    most the subscriber wants (``preferred_layer``); the allocation of the subscriber's
    bandwidth (``set_allowed_layer``) the most it gets, or that it gets nothing (switched
    off: nothing is forwarded until it is switched on again, at a keyframe).
    At creation ``current_layer`` is None: a video consumer waits for a keyframe, so the
    subscriber's decoder never starts mid-picture.

    ``deliver`` and ``producer_enabled_changed`` are the engine's internal API, called by
    the producer only.
    """

    def __init__(self, producer: Producer, consumer_id: str) -> None:
        super().__init__()
        self.id = consumer_id
        self.producer = producer
        self.kind = producer.kind
        self._current: str | None = None
        self._target: str | None = None
        self._render: tuple[int | None, int | None] = (None, None)
        self.layer_switches = 0
        self.on_producer_enabled: Callable[[bool], None] | None = None
        self._preferred: str | None = None
        self._allowed: str | None = None
        # the preferred layer within the allocation (``_target`` is what flows of it)
        self._desired: str | None = None
        self._silence_checked = 0.0
        self._switched_off = False
        self._started = False
        #: Why the consumer was last switched off or on (an ``allocator`` reason).
        self.switch_reason: str | None = None
        #: ``(off, reason)`` each time the allocation switches this consumer off or on.
        self.on_switched: Callable[[bool, str], None] | None = None
        self._waiting_since = time.monotonic()
        producer.attach_consumer(self)

    # -- layer choice ----------------------------------------------------------------

    @property
    def current_layer(self) -> str | None:
        """The layer being forwarded, or None before the first keyframe."""
        return self._current

    @property
    def target_layer(self) -> str | None:
        """The layer this consumer wants; equals ``current_layer`` when settled."""
        return self._target

    def wanted_layers(self) -> set[str]:
        """Layers this consumer needs from the source (none once closed): the one it
        forwards, the one it waits for, and the one it would have if the source sent it."""
        if self.closed:
            return set()
        return {n for n in (self._current, self._target, self._desired) if n is not None}

    @property
    def render_size(self) -> tuple[int | None, int | None]:
        """The render size the subscriber asked for ((None, None): not said)."""
        return self._render

    @property
    def preferred_layer(self) -> str | None:
        """The layer the render size asks for: the most this consumer wants."""
        return self._preferred

    @property
    def switched_off(self) -> bool:
        """Whether the allocation switched this consumer off (nothing is forwarded)."""
        return self._switched_off

    def set_preferred_size(self, width: int | None, height: int | None) -> None:
        """The render size the subscriber asked for; picks the layer to receive."""
        self._render = (width, height)
        self._retarget()

    def layers_changed(self) -> None:
        """Engine-internal: the producer learnt its layers' sizes; choose again."""
        self._retarget()

    def set_allowed_layer(self, name: str | None, *, switched_off: bool, reason: str = "") -> None:
        """The most the subscriber's bandwidth allows: layer ``name`` (None: no limit), or
        nothing at all (``switched_off``). A lower layer than the current one is switched to
        at its next keyframe; switching off stops forwarding at once; switching on waits for
        a keyframe, requested now. ``on_switched`` hears of switches off and on.
        """
        if self.closed:
            return
        if switched_off == self._switched_off:
            if not switched_off and name != self._allowed:
                self._allowed = name
                self._retarget()
            return
        self._allowed = name
        self._switched_off = switched_off
        self.switch_reason = reason
        if switched_off:
            self._current = None
            self._target = None
            self._desired = None
            self.producer.update_wanted_layers()
        else:
            self._waiting_since = time.monotonic()
            self._retarget(always_request=True)
        if self.on_switched is not None:
            try:
                self.on_switched(switched_off, reason)
            except Exception:
                logger.exception("switch callback of consumer %s failed", self.id)

    def _retarget(self, *, always_request: bool = False) -> None:
        if self.closed:
            return
        available = self.producer.available_layers()
        spec = choose_layer(available, *self._render)
        self._preferred = spec.name if spec is not None else None
        desired = None if self._switched_off else self._capped(available, self._preferred)
        self._desired = desired
        name = self._flowing_at_most(available, desired)
        changed = name != self._target
        self._target = name
        if (
            self._started
            and name is not None
            and name != self._current
            and (changed or always_request)
        ):
            self.producer.request_keyframe(name, force=True)
        self.producer.update_wanted_layers()

    def _capped(self, available: list[LayerSpec], wanted: str | None) -> str | None:
        allowed = self._allowed
        if wanted is None or allowed is None or allowed == wanted:
            return wanted
        names = [spec.name for spec in ordered_layers(available)]
        if allowed not in names:
            return wanted
        return names[min(names.index(wanted), names.index(allowed))]

    def _flowing_at_most(self, available: list[LayerSpec], desired: str | None) -> str | None:
        # A publisher whose uplink cannot carry a layer stops sending it (a browser's
        # encoder drops its top simulcast layers): wait on the best layer that still flows,
        # up to the desired one, and move up when the desired one arrives (``deliver``).
        # With nothing flowing yet (a start, a camera that encodes only wanted layers) the
        # desired layer is the one to wait for. A layer the publisher said it paused does
        # not flow, whatever its last packet.
        if desired is None or len(available) < 2:
            return desired
        # "now" is the source's latest packet: a layer flows if it is not far behind it
        paused = self.producer.paused_layers
        heard = [(name, layer.last_arrival) for name, layer in self.producer.layers.items()]
        latest = max((at for name, at in heard if at), default=0.0)
        flowing = {
            name for name, at in heard if at and latest - at < LAYER_SILENT_S and name not in paused
        }
        if not flowing or desired in flowing:
            return desired
        names = [spec.name for spec in ordered_layers(available)]
        if desired not in names:
            return desired
        below = [n for n in names[: names.index(desired)] if n in flowing]
        return below[-1] if below else desired

    def start(self) -> None:
        """Begin receiving: choose a layer and ask for a keyframe on it."""
        self._started = True
        self._retarget(always_request=True)

    # -- packets ---------------------------------------------------------------------

    def deliver(self, packet: MediaPacket) -> None:
        """Engine-internal: the producer hands over one packet (the forwarding hot path)."""
        layer = packet.layer
        if layer != self._current:
            if layer == self._target or layer == self._desired:
                if not packet.keyframe_start:
                    if layer == self._target:
                        self._still_waiting(packet)
                    return
                self._target = layer  # the desired layer flows again: it is the target
                self._switch(packet)
            else:
                self._check_silent(packet)
                return
        self._forward(packet)

    def _check_silent(self, packet: MediaPacket) -> None:
        # Another layer's packet: if the one forwarded or awaited went silent, fall back.
        if packet.arrival - self._silence_checked < LAYER_SILENT_S / 2:
            return
        self._silence_checked = packet.arrival
        watched = self._target or self._current
        state = self.producer.layers.get(watched) if watched is not None else None
        if state is not None and packet.arrival - state.last_arrival >= LAYER_SILENT_S:
            self._retarget()

    def _still_waiting(self, packet: MediaPacket) -> None:
        # The keyframe request (or the keyframe) may have been lost: ask again, now and then.
        if packet.arrival - self._waiting_since >= KEYFRAME_RETRY_S:
            self._waiting_since = packet.arrival
            self.producer.request_keyframe(packet.layer)

    def _switch(self, packet: MediaPacket) -> None:
        previous = self._current
        self._current = packet.layer
        if previous is not None:
            self.layer_switches += 1
        self._on_switch(packet, previous)
        self.producer.update_wanted_layers()

    def _on_switch(self, packet: MediaPacket, previous: str | None) -> None:
        """Subclasses re-base their sequence numbers and timestamps here."""

    def _forward(self, packet: MediaPacket) -> None:
        raise NotImplementedError

    def replace_producer(self, producer: Producer) -> None:
        """Carry another producer's media from now on (same codec), e.g. a new speaker.

        The subscriber sees one continuous stream: the switch happens at the new source's
        first keyframe, requested now, with sequence numbers and timestamps re-based as at
        a layer switch.
        """
        if producer is self.producer:
            return
        if producer.codec.name != self.producer.codec.name:
            raise UnsupportedCodec(
                f"consumer {self.id} carries {self.producer.codec.name}, not {producer.codec.name}"
            )
        old = self.producer
        producer.attach_consumer(self)
        old.detach_consumer(self)
        self.producer = producer
        self._current = None
        self._target = None
        self._desired = None
        self.start()

    # -- mute ------------------------------------------------------------------------

    def producer_enabled_changed(self, enabled: bool) -> None:
        """Engine-internal: the producer's publisher muted or unmuted."""
        if self.on_producer_enabled is not None:
            try:
                self.on_producer_enabled(enabled)
            except Exception:
                logger.exception("enabled callback of consumer %s failed", self.id)

    # -- lifetime --------------------------------------------------------------------

    def _on_close(self) -> None:
        # A producer closing its consumers has dropped them already.
        if self.closed_by is not self.producer:
            self.producer.detach_consumer(self)
        self._release()

    def _release(self) -> None:
        """Subclasses release their own resources here."""
