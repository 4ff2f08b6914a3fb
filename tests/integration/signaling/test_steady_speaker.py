"""The Python client and the kiosk as speakers, the kiosk through its own microphone path (an
ALSA file PCM read by the capture worker, which measures each period's level where it encodes
it, and the kiosk call's local producer): every change of speaker reaches a listener within
1.5 s, and 20 s of one steady speaker with the other's short blips change nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from appliance.kiosk.call import LocalCall
from appliance.kiosk.devices import KioskDevices
from appliance.kiosk.mixer import AudioMixer
from appliance.settings import Settings
from edge_sfu.client import connect
from hardware.audio.devices import AudioSpec
from tests.support.alsa import ALSA_FILE_PCMS
from tests.support.media import ToneAudioTrack
from tests.support.speech import speech_samples

pytestmark = pytest.mark.timeout(180)

CHANGE_S = 1.5
LOUD = 8000  # the client's tone: about -15 dBov
#: Seconds from when the kiosk's microphone starts. alice (the Python client) speaks 22 s
#: while the kiosk coughs in six times for 250 ms, then the kiosk speaks 21 s while alice
#: coughs in five times, then alice again. Blips are louder than the steady speaker by more
#: than the margin a louder speaker needs: only their shortness keeps them from taking over.
ALICE_SPEECH = [(2.0, 24.0), (50.0, 55.0)]
ALICE_BLIPS = [29.0, 33.0, 37.0, 41.0, 45.0]
KIOSK_SPEECH = [(26.0, 47.0)]
KIOSK_BLIPS = [5.0, 8.0, 11.0, 14.0, 17.0, 20.0]
END_S = 57.0
ONSETS = [(2.0, "alice"), (26.0, "kiosk"), (50.0, "alice")]


async def _play_alice(mic: ToneAudioTrack, t0: float) -> None:
    steps = [(a, LOUD) for a, _ in ALICE_SPEECH] + [(b, 0) for _, b in ALICE_SPEECH]
    steps += [(t, LOUD * 3) for t in ALICE_BLIPS] + [(t + 0.25, 0) for t in ALICE_BLIPS]
    for at, amplitude in sorted(steps):
        await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
        mic.amplitude = amplitude


async def test_client_and_kiosk_microphone_follow_each_other(
    sfu, clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / f"alsa-{time.monotonic_ns()}.conf"  # ALSA rereads a new file only
    conf.write_text(ALSA_FILE_PCMS)
    monkeypatch.setenv("ALSA_CONFIG_PATH", f"/usr/share/alsa/alsa.conf:{conf}")
    pcm = speech_samples(END_S + 10, KIOSK_SPEECH) + speech_samples(
        END_S + 10, blips=KIOSK_BLIPS, amplitude=1.0
    )
    microphone = tmp_path / "kiosk-mic.raw"  # long enough: ALSA repeats stale data past the end
    microphone.write_bytes(pcm.tobytes())

    watcher = await connect(sfu.ws_url, sfu.token("watcher"), dominant_speaker=True)
    mic = ToneAudioTrack(0)
    alice = await connect(sfu.ws_url, sfu.token("alice"), tracks=[mic])
    clients.extend([watcher, alice])
    await alice.wait_for("published", timeout=20)
    changes: list[tuple[float, str | None]] = []
    watcher.on(
        "dominant_speaker_changed",
        lambda who: changes.append((time.monotonic(), who.identity if who else None)),
    )

    problems: list[tuple[str, str]] = []
    devices = KioskDevices(
        Settings(),
        None,
        AudioSpec(capture_device=f"filecap:INFILE={microphone}"),
        on_press=lambda button, long: None,
        on_problem=lambda part, why: problems.append((part, why)),
    )
    devices.open(asyncio.get_running_loop())
    mixer = AudioMixer(lambda pcm: None)
    mixer.start()
    call = LocalCall(sfu.signaling, devices.use(), mixer, lambda reason, code: None)
    try:
        await call.join("room1", "kiosk", muted=False)  # returns once the microphone runs
        t0 = time.monotonic()
        await _play_alice(mic, t0)
        await asyncio.sleep(max(0.0, t0 + END_S - time.monotonic()))
    finally:
        call.close()
        await mixer.close()
        devices.close()

    assert not [p for p in problems if p[0] in ("microphone", "audio")], problems
    seen = [(round(at - t0, 2), who) for at, who in changes]
    assert [who for _, who in seen] == [who for _, who in ONSETS], seen
    for (at, who), (onset, speaker) in zip(seen, ONSETS, strict=True):
        assert who == speaker and onset <= at <= onset + CHANGE_S, (who, at, onset, seen)
