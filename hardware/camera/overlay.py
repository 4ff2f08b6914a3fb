"""A frame counter and clock burnt into the picture, so latency can be read off a screen.

FFmpeg's ``drawtext`` filter is not built into PyAV's wheels, so digits are drawn from a tiny
3x5 bitmap font straight into the luma plane.
"""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

_FONT = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    ":": "000010000010000",
    ".": "000000000000010",
    " ": "000000000000000",
}
_GLYPHS = {
    ch: np.array([int(b) for b in bits], dtype=np.uint8).reshape(5, 3) for ch, bits in _FONT.items()
}


def overlay_text(frame_no: int, wall_time: float | None = None) -> str:
    """``"000123 12:34:56.789"``: the frame number and the UTC wall clock to the millisecond."""
    t = time.time() if wall_time is None else wall_time
    ms = int(t * 1000) % 1000
    return f"{frame_no % 1_000_000:06d} {time.strftime('%H:%M:%S', time.gmtime(t))}.{ms:03d}"


def draw_text(luma: npt.NDArray[np.uint8], text: str, scale: int, x: int = 0, y: int = 0) -> None:
    """Draw ``text`` white on black into the 2-D ``luma`` array at (x, y), in place."""
    cell = 4 * scale  # 3 columns of glyph plus one of spacing
    height = 7 * scale
    width = cell * len(text) + scale
    h = min(height, luma.shape[0] - y)
    w = min(width, luma.shape[1] - x)
    if h <= 0 or w <= 0:
        return
    box = np.zeros((height, width), dtype=np.uint8)
    for i, ch in enumerate(text):
        glyph = _GLYPHS.get(ch, _GLYPHS[" "])
        big = np.kron(glyph, np.ones((scale, scale), dtype=np.uint8)) * 235
        box[scale : 6 * scale, scale + i * cell : scale + i * cell + 3 * scale] = big
    luma[y : y + h, x : x + w] = box[:h, :w]
