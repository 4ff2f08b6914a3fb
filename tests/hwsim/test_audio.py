"""ALSA capture and playback through pyalsaaudio on ALSA ``file`` PCMs (no sound card)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hardware.audio.capture import AudioCapture, OpusEncoder, OpusPacket
from hardware.audio.devices import AudioError, AudioSpec
from hardware.audio.playback import AudioPlayback
from hardware.errors import DeviceNotFoundError, MixerUnavailableError
from tests.support.waiting import wait_for_sync

from .conftest import Events

RATE = 48_000


def _tone(path: Path, freq: float, amplitude: float, seconds: float) -> None:
    t = np.arange(int(RATE * seconds)) / RATE
    (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2").tofile(path)


def _decode_opus(packets: list[OpusPacket]) -> np.ndarray:
    import av

    dec = av.CodecContext.create("libopus", "r")
    dec.sample_rate = RATE
    dec.layout = "mono"
    out = [f.to_ndarray().reshape(-1) for p in packets for f in dec.decode(av.Packet(p.data))]
    return np.concatenate(out).astype(np.float64)


@pytest.mark.parametrize("period_ms", [10, 20])
def test_tone_captured_comes_back_out_of_opus(
    alsa_files: Path, events: Events, period_ms: int
) -> None:
    infile = alsa_files / "tone.raw"
    _tone(infile, 997.0, 0.25, 10.0)  # long enough: ALSA replays stale data past the end
    spec = AudioSpec(capture_device=f"filecap:INFILE={infile}", period_ms=period_ms)
    cap = AudioCapture(spec, events)
    cap.start()
    try:
        packets = events.wait_count(OpusPacket, 1000 // period_ms)  # one second
    finally:
        cap.stop()
    assert not events.of(AudioError)
    frames = spec.period_frames
    assert [p.pts for p in packets[:10]] == [i * frames for i in range(10)]
    assert {p.duration for p in packets} == {frames}
    pcm = _decode_opus(packets)[4800:]  # skip the encoder's start-up
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    peak_hz = np.fft.rfftfreq(len(pcm), 1 / RATE)[spectrum.argmax()]
    assert abs(peak_hz - 997.0) < 3.0
    rms_db = 20 * np.log10(np.sqrt(np.mean(pcm**2)) / 32767)
    expected_db = 20 * np.log10(0.25 / np.sqrt(2))  # -15.1 dBFS
    assert abs(rms_db - expected_db) < 1.0
    # each packet carries the level of what it encodes, for the SFU (RFC 6464, -dBov)
    assert {p.level_dbov for p in packets[2:]} <= {14, 15, 16}


@pytest.mark.parametrize("bitrate", [16_000, 32_000, 64_000])
def test_opus_keeps_to_its_configured_bitrate_on_a_steady_tone(bitrate: int) -> None:
    # a steady tone is where libopus's free VBR overspends: 45.6 kbit/s at a 32k target
    spec = AudioSpec(opus_bitrate=bitrate)
    encoder = OpusEncoder(spec)
    seconds = 5.0
    t = np.arange(int(RATE * seconds)) / RATE
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    size, n = 0, spec.period_bytes
    for i in range(0, len(pcm) - n + 1, n):
        size += sum(len(data) for data, _ in encoder.encode(pcm[i : i + n], i // 2))
    assert size * 8 / seconds <= 1.1 * bitrate


def test_absent_device_names_it_and_lists_what_alsa_offers(alsa_files: Path) -> None:
    cap = AudioCapture(AudioSpec(capture_device="usbmic"), lambda e: None)
    with pytest.raises(DeviceNotFoundError) as info:
        cap.start()
    assert "'usbmic'" in str(info.value)
    assert "filecap" in str(info.value) and "null" in str(info.value)


def test_capture_device_closed_mid_stream_is_an_error_event_then_restarts(
    alsa_files: Path, events: Events
) -> None:
    infile = alsa_files / "tone.raw"
    _tone(infile, 440.0, 0.5, 10.0)
    cap = AudioCapture(AudioSpec(capture_device=f"filecap:INFILE={infile}"), events)
    cap.start()
    try:
        events.wait_count(OpusPacket, 5)
        with cap._pcm_lock:  # what the worker reads goes away between two reads
            cap._pcm.close()
        errors = events.wait_count(AudioError, 1, timeout=10)
        assert "filecap" in errors[0].message and errors[0].device.startswith("filecap")
        events.wait_for(lambda: not cap.running, timeout=10)
        n = len(events.of(OpusPacket))
        cap.start()
        events.wait_count(OpusPacket, n + 5)
    finally:
        cap.stop()


def _constant(value: int, n: int = 960) -> np.ndarray:
    return np.full(n, value, dtype=np.int16)


def test_playback_writes_in_order_and_fills_gaps_with_silence(alsa_files: Path) -> None:
    outfile = alsa_files / "out.raw"
    spec = AudioSpec(playback_device=f"filesink:OUTFILE={outfile},FMT=raw", jitter_ms=40)
    play = AudioPlayback(spec)
    # Chunks out of order, chunk 3 missing, chunk 6 half a period long.
    for k in (0, 2, 1, 4, 5):
        play.push(_constant(k + 1), pos=1000 + k * 960)
    play.push(_constant(7, 480), pos=1000 + 6 * 960)
    play.start()
    try:
        wait_for_sync(lambda: play.periods_written >= 12, timeout=20, interval=0.02)
    finally:
        play.stop()
    out = np.fromfile(outfile, dtype="<i2")
    assert not out[:960].any()  # the one period of silence written ahead
    out = out[960:]
    expected = np.concatenate(
        [_constant(v) for v in (1, 2, 3, 0, 5, 6)] + [_constant(7, 480), _constant(0, 480)]
    )
    assert play.periods_written >= 12
    assert np.array_equal(out[: len(expected)], expected)
    assert not out[len(expected) :].any()  # silence after the last chunk, never a repeat
    assert play.gap_samples == len(out) - 6 * 960 + 480
    assert play.underruns == 0


def test_playback_drops_late_audio_and_appends_without_positions(alsa_files: Path) -> None:
    outfile = alsa_files / "out.raw"
    spec = AudioSpec(playback_device=f"filesink:OUTFILE={outfile},FMT=raw", jitter_ms=0)
    play = AudioPlayback(spec)
    play.push(_constant(1))
    play.push(_constant(2))  # follows the first chunk
    play.start()
    try:
        wait_for_sync(lambda: play.periods_written >= 4, timeout=20, interval=0.02)
        play.push(_constant(9), pos=0)  # long past
    finally:
        play.stop()
    out = np.fromfile(outfile, dtype="<i2")[960:]  # after the period of silence written ahead
    assert np.array_equal(out[:1920], np.concatenate([_constant(1), _constant(2)]))
    assert 9 not in out
    assert play.late_dropped == 1


def test_stream_starting_after_playout_began_is_heard(alsa_files: Path) -> None:
    """A mixer that starts pushing (without positions) once the speaker has been playing
    silence for a while must be resynced to the playout position, not dropped as late."""
    outfile = alsa_files / "out.raw"
    spec = AudioSpec(playback_device=f"filesink:OUTFILE={outfile},FMT=raw", jitter_ms=40)
    play = AudioPlayback(spec)
    play.start()
    try:
        wait_for_sync(lambda: play.periods_written >= 10, timeout=20, interval=0.02)
        for _ in range(5):
            play.push(_constant(5))
        written = play.periods_written
        wait_for_sync(lambda: play.periods_written >= written + 12, timeout=20, interval=0.02)
    finally:
        play.stop()
    out = np.fromfile(outfile, dtype="<i2")
    assert play.late_dropped == 0
    assert np.count_nonzero(out == 5) == 5 * 960  # every pushed sample was played, once


def test_playback_device_closed_is_an_error_event(alsa_files: Path, events: Events) -> None:
    outfile = alsa_files / "out.raw"
    spec = AudioSpec(playback_device=f"filesink:OUTFILE={outfile},FMT=raw", jitter_ms=0)
    play = AudioPlayback(spec, on_error=events)
    play.start()
    try:
        with play._pcm_lock:
            play._pcm.close()
        errors = events.wait_count(AudioError, 1, timeout=10)
        assert "filesink" in errors[0].message
        events.wait_for(lambda: not play.running, timeout=10)
        play.start()
        before = play.periods_written
        wait_for_sync(lambda: play.periods_written >= before + 3, timeout=20, interval=0.02)
        assert play.periods_written >= before + 3
    finally:
        play.stop()


def test_volume_without_a_mixer_is_a_clear_error(alsa_files: Path) -> None:
    play = AudioPlayback(AudioSpec(playback_device="null"))
    with pytest.raises(MixerUnavailableError, match="no mixer control"):
        play.set_volume(50)
