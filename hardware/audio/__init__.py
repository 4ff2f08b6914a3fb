"""ALSA audio: capture to Opus packets, playback with a jitter buffer, device lookup."""

from hardware.audio.devices import AudioError, AudioSpec

__all__ = ["AudioError", "AudioSpec"]
