"""Draw the Zendesk app logos (assets/logo.png 320x320, assets/logo-small.png 128x128) without Pillow."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
SIZES = {"logo.png": 320, "logo-small.png": 128}

TEAL_TOP = (20, 184, 166)
TEAL_BOTTOM = (15, 118, 110)
WHITE = (255, 255, 255)

# The glyph, in units of the logo's side: three ledger rows and a check mark beside the short one.
LEDGER_ROWS = (((0.27, 0.31), (0.73, 0.31)), ((0.27, 0.43), (0.73, 0.43)), ((0.27, 0.55), (0.47, 0.55)))
LEDGER_HALF_WIDTH = 0.036
CHECK = ((0.52, 0.63), (0.60, 0.71), (0.75, 0.54))
CHECK_HALF_WIDTH = 0.046


def _round_box(x: float, y: float, half: float, radius: float) -> float:
    """Signed distance from (x, y) to a square of half-side `half` with rounded corners, centred at 0.5."""
    qx = abs(x - 0.5) - half + radius
    qy = abs(y - 0.5) - half + radius
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - radius


def _segment(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance from (x, y) to the segment a-b."""
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(x - ax - t * dx, y - ay - t * dy)


def _glyph(x: float, y: float) -> float:
    """Signed distance to the white glyph."""
    rows = min(_segment(x, y, a, b) for a, b in LEDGER_ROWS) - LEDGER_HALF_WIDTH
    check = min(_segment(x, y, CHECK[0], CHECK[1]), _segment(x, y, CHECK[1], CHECK[2])) - CHECK_HALF_WIDTH
    return min(rows, check)


def _coverage(distance: float, pixel: float) -> float:
    """How much of a pixel a shape covers, from the signed distance at its centre (a cheap antialias)."""
    return max(0.0, min(1.0, 0.5 - distance / pixel))


def render(size: int) -> bytes:
    """Return the logo as size x size RGBA rows, each prefixed with PNG filter type 0."""
    pixel = 1.0 / size
    rows = bytearray()
    for j in range(size):
        y = (j + 0.5) * pixel
        shade = j / (size - 1)
        teal = [round(top + (bot - top) * shade) for top, bot in zip(TEAL_TOP, TEAL_BOTTOM, strict=True)]
        rows.append(0)
        for i in range(size):
            x = (i + 0.5) * pixel
            alpha = _coverage(_round_box(x, y, 0.47, 0.2), pixel)
            if alpha == 0.0:
                rows += b"\0\0\0\0"
                continue
            ink = _coverage(_glyph(x, y), pixel)
            rgb = (round(c + (w - c) * ink) for c, w in zip(teal, WHITE, strict=True))
            rows += bytes((*rgb, round(alpha * 255)))
    return bytes(rows)


def png(size: int, raw_rows: bytes) -> bytes:
    """Wrap filtered RGBA rows in a minimal PNG (IHDR, IDAT, IEND)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw_rows, 9)) + chunk(b"IEND", b""))


def main() -> None:
    """Write both logos into manifest/assets."""
    ASSETS.mkdir(exist_ok=True)
    for name, size in SIZES.items():
        path = ASSETS / name
        path.write_bytes(png(size, render(size)))
        print(f"wrote {path} ({size}x{size})")


if __name__ == "__main__":
    main()
