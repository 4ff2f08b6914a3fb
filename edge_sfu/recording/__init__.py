"""Recordings and compositions: every recorded track on disk as it was forwarded, without
transcoding (``recorder``, ``mkv``), and rooms composed into one video by FFmpeg in a
low-priority process (``composer``). See ``docs/recordings.md``.

Nothing here imports aiortc or PyAV at import time: the recorder reaches the media engine
only through a room's router, which exists once a room has media.
"""
