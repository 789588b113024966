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
from collections.abc import Iterator, Sequence
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


# x264's choices for these movies. Sky frames are noise, which neither motion search nor B-frames predict, so the
# slower presets spend their time for little: ultrafast's analysis with CABAC put back (ultrafast turns it off; it
# costs little time and saves ~40% of the bytes) takes a third of veryfast's CPU time on a sector, in fewer bytes,
# with the frame's pixels on H.264's block grid (`canvas.Layout.grid_px`). No deblocking (as in ultrafast): the
# edges between upscaled pixels are real, and the filter would smear them. CRF 16: the decoded frames are as close
# to the GIF's colours as veryfast's at CRF 10 were (rms ~1.9 of 255 on a sector of the emulator's sky, most of it
# YUV rounding), in 60% of the bytes. A keyframe every 40 frames (2 s at 20 fps), so a seek (the explorer's frame
# slider) decodes at most 40 frames. The thread count is fixed because x264's output depends on it: the same
# frames give the same bytes on any machine.
MP4_CRF = 16
MP4_KEYFRAME_INTERVAL = 40
MP4_THREADS = 4
_X264_PARAMS = "cabac=1"


# BT.601 in limited ("TV") range, as ffmpeg converts RGB when nothing else is said, and so tagged in the stream:
# rows are (R, G, B) weights of Y, Cb, Cr for components in 0..1, and the offsets.
_BT601 = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
_BT601_OFFSETS = np.array([16.0, 128.0, 128.0])
_BT601_TAGS = ("-colorspace", "smpte170m", "-color_range", "tv")


def yuv_tables(palette_rgb: Sequence[int]) -> tuple[bytes, bytes, bytes]:
    """Return the Y, Cb and Cr of each palette entry as three 256-byte tables for `bytes.translate`.

    ``palette_rgb`` is a "P" image's palette, R, G, B of each entry in turn; missing entries are black.
    """
    rgb = np.zeros((256, 3), dtype=np.float64)
    entries = np.asarray(palette_rgb, dtype=np.float64).reshape(-1, 3)[:256]
    rgb[: len(entries)] = entries
    ycbcr = np.clip(np.rint(rgb / 255.0 @ _BT601.T + _BT601_OFFSETS), 0, 255).astype(np.uint8)
    y, cb, cr = (ycbcr[:, k].tobytes() for k in range(3))
    return y, cb, cr


def yuv420_frame(image: Image.Image, tables: tuple[bytes, bytes, bytes]) -> bytes:
    """Return a "P" frame as planar YUV 4:2:0 (rawvideo yuv420p): Y of every pixel, then Cb and Cr at half size.

    A palette lookup per byte (`bytes.translate`), no arithmetic per pixel. Each 2×2 block's chroma is that of its
    top-left pixel rather than the block's mean: on a movie's canvas the frame's pixels are whole blocks on the
    8-px grid (`canvas.Layout.grid_px`) and the annotations are white or black (no chroma), so it is the same but
    for a one-pixel fringe at odd scales; and it costs a strided copy instead of arithmetic on every pixel.
    """
    y, cb, cr = tables
    corners = np.asarray(image)[::2, ::2].tobytes()
    return image.tobytes().translate(y) + corners.translate(cb) + corners.translate(cr)


def encode_mp4(images: Iterator[Image.Image], size: tuple[int, int], fps: float) -> bytes:
    """Write "P" frames of ``size`` (even width and height) as an H.264 mp4 at ``fps`` (yuv420p, faststart).

    Deterministic: the same frames give the same bytes. Frames go to ffmpeg already in YUV (`yuv420_frame`): no
    RGB copy of a frame is made, and ffmpeg converts nothing, x264 takes them as they come.
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
            pix_fmt_in="yuv420p",
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            quality=None,  # the rate control is ours: -crf below
            macro_block_size=1,  # the canvas is already even-sized; never let ffmpeg rescale it
            ffmpeg_log_level="error",
            # faststart: the index up front, so a browser can play while downloading. bitexact: no encoder
            # version strings, the same bytes every time.
            output_params=[
                *("-preset", "ultrafast", "-x264-params", _X264_PARAMS, "-crf", str(MP4_CRF)),
                *("-g", str(MP4_KEYFRAME_INTERVAL), "-threads", str(MP4_THREADS), *_BT601_TAGS),
                *("-movflags", "+faststart", "-fflags", "+bitexact"),
            ],
        )
        writer.send(None)
        palette: list[int] | None = None
        tables = (b"", b"", b"")
        try:
            for image in images:
                if image.mode != "P":
                    raise ValueError(f"encode_mp4 takes palette (P) frames, not {image.mode!r}.")
                colors = image.getpalette("RGB")
                if colors != palette:  # every frame of a movie shares one palette: converted once
                    palette, tables = colors, yuv_tables(colors or [])
                writer.send(yuv420_frame(image, tables))
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
