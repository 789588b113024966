"""Encoders for palette ("P") frames: a looping GIF, an H.264 mp4 or a PNG, frames in, bytes out.

Deterministic: the same frames always give the same bytes (no timestamps, no encoder version strings), so a
movie's ETag depends only on what it shows.
"""

from __future__ import annotations

import importlib
import io
import itertools
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import GifImagePlugin, Image

__all__ = [
    "GIF_MEDIA_TYPE",
    "MP4_AVAILABLE",
    "MP4_MEDIA_TYPE",
    "PNG_MEDIA_TYPE",
    "encode_gif",
    "encode_mp4",
    "encode_png",
    "encode_rgb_png",
]

GIF_MEDIA_TYPE = "image/gif"
MP4_MEDIA_TYPE = "video/mp4"
PNG_MEDIA_TYPE = "image/png"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# GIF delays are whole centiseconds, and browsers play delays under 20 ms at 100 ms.
_MIN_GIF_DELAY_MS = 20


def _load_ffmpeg() -> Any:
    """Return the imageio_ffmpeg module when it and its ffmpeg binary are there, else None."""
    try:
        module = importlib.import_module("imageio_ffmpeg")
        module.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None
    return module


_FFMPEG = _load_ffmpeg()
MP4_AVAILABLE: bool = _FFMPEG is not None


def _gif_delay_ms(fps: float) -> int:
    return max(_MIN_GIF_DELAY_MS, 10 * round(100.0 / fps))


def encode_gif(images: Iterator[Image.Image], fps: float) -> bytes:
    """Write a looping GIF one frame at a time with Pillow's GIF encoder: one global palette, no local ones.

    Not ``save(save_all=True)``: that holds a copy of every frame until the end (~180 kB a 400 px frame, so
    ~230 MB for a sector) and diffs each against the last, which noisy sky frames never repay. Here only the
    frame being encoded is in memory, and every frame is kept, even one identical to the last.
    """
    delay_ms = _gif_delay_ms(fps)
    buffer = io.BytesIO()
    first = next(images)
    # Logical screen, the palette (the same for every frame) and the NETSCAPE loop-forever extension.
    header, _ = GifImagePlugin.getheader(first, None, {"loop": 0, "duration": delay_ms})
    buffer.write(b"".join(header))
    for image in itertools.chain((first,), images):
        # disposal 1: frames are opaque and cover the whole canvas, nothing to restore between them.
        buffer.write(b"".join(GifImagePlugin.getdata(image, (0, 0), duration=delay_ms, disposal=1)))
    buffer.write(b";")  # GIF trailer
    return buffer.getvalue()


def encode_mp4(images: Iterator[Image.Image], size: tuple[int, int], fps: float) -> bytes:
    """Write an H.264 mp4 (yuv420p, faststart, bit-exact) of ``size`` (even width and height) at ``fps``.

    Raises RuntimeError("mp4 needs imageio-ffmpeg") when ffmpeg is not there.
    """
    if _FFMPEG is None:
        raise RuntimeError("mp4 needs imageio-ffmpeg")
    # ffmpeg's mp4 muxer needs a seekable output (moov atom), so it writes a temporary file we read back.
    with tempfile.TemporaryDirectory(prefix="tess-movie-") as directory:
        path = Path(directory) / "movie.mp4"
        writer = _FFMPEG.write_frames(
            str(path),
            size,
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            quality=8,
            macro_block_size=1,  # the canvas is already even-sized; never let ffmpeg rescale it
            ffmpeg_log_level="error",
            # faststart: the index up front, so a browser can play while downloading. veryfast: 2.5x the default
            # preset's speed for ~8% more bytes. bitexact: no encoder version strings, the same bytes every time.
            output_params=["-preset", "veryfast", "-movflags", "+faststart", "-fflags", "+bitexact"],
        )
        writer.send(None)
        try:
            for image in images:
                writer.send(image.convert("RGB").tobytes())
        finally:
            writer.close()
        return path.read_bytes()


def encode_png(image: Image.Image) -> bytes:
    """Write one frame as a PNG with Pillow's default compression (no extra optimize pass)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def encode_rgb_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """Write an opaque (height, width, 3 or 4) picture as an 8-bit RGB PNG with no metadata: deterministic bytes.

    Written here rather than by savefig/Pillow: their encoders pick a filter for every row by trying each one, which
    on a plot costs twice what the compression does. Unfiltered rows at zlib level 1 are both faster and smaller
    for line art on a flat background. A fourth (alpha) channel is dropped.
    """
    height, width = pixels.shape[:2]
    rows = np.empty((height, 1 + 3 * width), dtype=np.uint8)
    rows[:, 0] = 0  # filter type 0 (None) on every row
    rows[:, 1:].reshape(height, width, 3)[...] = pixels[..., :3]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(rows.data, 1)),
            _png_chunk(b"IEND"),
        )
    )


def _png_chunk(kind: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
