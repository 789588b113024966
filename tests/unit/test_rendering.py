"""Rendering: decode what the renderers make and check the pictures, not just the media types."""

import functools
import io
import subprocess

import numpy as np
import pytest
from PIL import Image

from service.rendering import movies
from service.rendering.colormaps import BAD_INDEX, BLACK_INDEX, N_LEVELS, RED_INDEX, WHITE_INDEX, palette_rgb
from service.rendering.movies import (
    ALLOWED_CMAPS,
    MP4_AVAILABLE,
    FrameStack,
    MovieStyle,
    render_frame_png,
    render_movie,
    robust_limits,
)
from service.rendering.plots import (
    HIGHLIGHT_COLOR,
    MODEL_COLOR,
    POINT_COLOR,
    PlotSeries,
    PlotSize,
    PlotView,
    render_lightcurve_png,
)

N_FRAMES = 48
SIZE = 50
TARGET_XY = (25.0, 25.0)
FLAGGED = 10
START_BTJD = 1334.0


def blob_xy(i):
    """The moving source: from (x=5, y=20) to (x=45, y=35) over the movie."""
    fraction = i / (N_FRAMES - 1)
    return 5 + 40 * fraction, 20 + 15 * fraction


def synthetic_frames(seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.normal(100.0, 5.0, (N_FRAMES, SIZE, SIZE)).astype(np.float32)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    frames += 2000 * np.exp(-((xx - TARGET_XY[0]) ** 2 + (yy - TARGET_XY[1]) ** 2) / (2 * 1.2**2))
    for i in range(N_FRAMES):
        bx, by = blob_xy(i)
        frames[i] += 500 * np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * 1.0**2))
    times = START_BTJD + np.arange(N_FRAMES) / 48.0
    cadences = 1000 + np.arange(N_FRAMES)
    quality = np.zeros(N_FRAMES, dtype=np.int32)
    quality[FLAGGED] = 32
    return frames, times, cadences, quality


def movie(frames=None, style=None, **kwargs):
    base, times, cadences, quality = synthetic_frames()
    frames = base if frames is None else frames
    return render_movie(FrameStack(frames, times, cadences, quality), TARGET_XY, style or MovieStyle(), **kwargs)


@functools.cache
def default_movie_frames():
    """The default movie, decoded once for the tests that only look at it."""
    return decode_gif(movie()[0])


def decode_gif(payload):
    """Return (image, list of RGB frames as arrays)."""
    image = Image.open(io.BytesIO(payload))
    frames = []
    for k in range(image.n_frames):
        image.seek(k)
        frames.append(np.asarray(image.convert("RGB")))
    return image, frames


def levels_of(rgb, cmap="YlGnBu_r"):
    """Map RGB pixels back to data levels 0..N_LEVELS-1 through the palette; annotation colours become -1."""
    palette = palette_rgb(cmap).astype(np.int64)
    codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    lookup = {}
    for index in range(N_LEVELS - 1, -1, -1):  # a colour shared by two levels maps to the lower one
        lookup[int(codes[index])] = index
    pixel_codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    keys = np.array(sorted(lookup), dtype=np.int64)
    values = np.array([lookup[k] for k in sorted(lookup)])
    position = np.clip(np.searchsorted(keys, pixel_codes), 0, keys.size - 1)
    return np.where(keys[position] == pixel_codes, values[position], -1)


def image_box(rgb, cmap="YlGnBu_r"):
    """Return the (x0, y0, x1, y1) box of the frame's pixels: the bounding box of data-coloured pixels."""
    rows, cols = np.nonzero(levels_of(rgb, cmap) >= 0)
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


def frame_levels(rgb, box, cmap="YlGnBu_r"):
    """Return the (ny, nx) levels of the drawn frame, row 0 at the bottom like the input, one sample per pixel."""
    x0, y0, x1, y1 = box
    scale = (x1 - x0) // SIZE
    centres = scale // 2 + scale * np.arange(SIZE)
    levels = levels_of(rgb, cmap)[y0:y1, x0:x1][np.ix_(centres, centres)]
    return levels[::-1]


def count_color(rgb, color):
    return int(np.all(rgb == np.asarray(color, dtype=np.uint8), axis=-1).sum())


# ---------------------------------------------------------------- movies


def test_gif_has_every_frame_loops_and_plays_at_fps():
    payload, media_type = movie()
    assert media_type == "image/gif"
    image, frames = decode_gif(payload)
    assert image.n_frames == N_FRAMES
    assert image.info["loop"] == 0
    assert image.info["duration"] == 50
    width, height = image.size
    assert 400 <= width <= 480 and 400 <= height <= 480


def test_moving_source_moves_left_to_right_and_up():
    _, frames = default_movie_frames()
    box = image_box(frames[0])
    assert box[2] - box[0] == box[3] - box[1] == 400  # 50 px × 8
    yy, xx = np.mgrid[:SIZE, :SIZE]
    near_target = (xx - TARGET_XY[0]) ** 2 + (yy - TARGET_XY[1]) ** 2 <= 4.5**2
    found = []
    for rgb in frames:
        levels = frame_levels(rgb, box).astype(float)
        levels[levels < 0] = np.nan  # the marker's pixels
        levels -= np.nanmedian(levels)
        levels[near_target | np.isnan(levels)] = -np.inf
        row, col = np.unravel_index(np.argmax(levels), levels.shape)
        found.append((col, row))
    xs = np.array([x for x, _ in found])
    ys = np.array([y for _, y in found])
    expected = np.array([blob_xy(i) for i in range(N_FRAMES)])
    visible = ~((np.abs(expected[:, 0] - TARGET_XY[0]) < 5.5) & (np.abs(expected[:, 1] - TARGET_XY[1]) < 5.5))
    assert np.all(np.diff(xs[visible]) >= 0)
    assert xs[visible][-1] - xs[visible][0] >= 35
    assert np.all(np.abs(xs[visible] - expected[visible, 0]) <= 1.01)
    # Row 0 is the bottom: had the frame not been flipped, y would come out as 49 - y.
    assert np.all(np.abs(ys[visible] - expected[visible, 1]) <= 1.01)


def test_quality_flagged_frame_alone_has_red():
    _, frames = default_movie_frames()
    red = tuple(palette_rgb("YlGnBu_r")[RED_INDEX])
    counts = [count_color(rgb, red) for rgb in frames]
    assert counts[FLAGGED] > 1000  # a border around 400 × 400, and the "Q=32" text
    assert all(count == 0 for i, count in enumerate(counts) if i != FLAGGED)


def test_one_hot_pixel_does_not_wash_out_the_movie():
    frames, *_ = synthetic_frames()
    frames[5, 3, 3] = 1e6
    _, decoded = decode_gif(movie(frames)[0])
    _, clean = default_movie_frames()
    middle = N_FRAMES // 2
    box = image_box(decoded[middle])
    levels = frame_levels(decoded[middle], box)
    assert levels.max() - levels[levels >= 0].min() > 150
    # Min–max limits would have squashed every frame into the palette's first level; these barely moved.
    assert np.abs(levels - frame_levels(clean[middle], box)).max() <= 1
    assert levels_of(decoded[5])[box[1] + (SIZE - 1 - 3) * 8 + 4, box[0] + 3 * 8 + 4] == N_LEVELS - 1


def test_robust_limits_ignore_nan_and_hot_pixels():
    frames, *_ = synthetic_frames()
    frames[0, :5, :5] = np.nan
    frames[1, 0, 0] = 1e6
    low, high = robust_limits(frames)
    assert 80 < low < 100
    assert high < 3000
    assert robust_limits(np.full((2, 3, 3), np.nan)) == (0.0, 1.0)
    flat_low, flat_high = robust_limits(np.full((2, 3, 3), 7.0))
    assert flat_low < 7.0 < flat_high


def test_extreme_and_infinite_values_render_without_warnings():
    frame = np.random.default_rng(2).normal(100.0, 5.0, (SIZE, SIZE))
    frame[0, 0], frame[0, 1], frame[0, 2], frame[0, 3] = 1e300, -1e300, np.inf, -np.inf
    for stretch in ("linear", "log"):
        payload, _ = render_frame_png(frame, START_BTJD, 1, 0, TARGET_XY, MovieStyle(stretch=stretch))
        rgb = np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"))
        bottom_row = frame_levels(rgb, image_box(rgb))[0]
        assert bottom_row[0] == N_LEVELS - 1 and bottom_row[1] == 0
        assert bottom_row[2] == bottom_row[3] == -1  # infinities are "no data"


def test_stretches_change_the_picture_and_brighten_the_background():
    medians = {}
    payloads = set()
    for stretch in ("linear", "sqrt", "log", "asinh"):
        payload, _ = movie(style=MovieStyle(stretch=stretch))
        payloads.add(payload)
        _, frames = decode_gif(payload)
        levels = frame_levels(frames[0], image_box(frames[0]))
        medians[stretch] = np.median(levels[levels >= 0])
    assert len(payloads) == 4
    # Every stretch lifts faint pixels; for the background (a few % of the range) sqrt lifts more than asinh.
    assert medians["linear"] < medians["asinh"] < medians["sqrt"] < medians["log"]


def test_unknown_colormap_and_bad_styles_are_value_errors():
    with pytest.raises(ValueError, match="colormap"):
        MovieStyle(cmap="jet")
    with pytest.raises(ValueError):
        MovieStyle(vmin=5.0, vmax=1.0)
    with pytest.raises(ValueError):
        MovieStyle(fps=0)
    with pytest.raises(ValueError):
        MovieStyle(scale=0)
    assert {"YlGnBu_r", "viridis", "magma", "gray", "inferno", "plasma", "cividis", "Greys_r", "hot", "coolwarm"} <= (
        ALLOWED_CMAPS
    )


def test_every_allowed_colormap_renders_with_a_distinct_bad_colour():
    for cmap in sorted(ALLOWED_CMAPS):
        palette = palette_rgb(cmap).astype(int)
        bad = palette[BAD_INDEX]
        assert np.min(np.linalg.norm(palette[:N_LEVELS] - bad, axis=1)) > 30, cmap
        frame, *_ = synthetic_frames()
        render_frame_png(frame[0], START_BTJD, 1, 0, TARGET_XY, MovieStyle(cmap=cmap))


def test_nan_pixels_are_drawn_in_the_bad_colour():
    frames, *_ = synthetic_frames()
    frames[0, 10:14, 40:44] = np.nan
    _, decoded = decode_gif(movie(frames)[0])
    box = image_box(decoded[1])
    x0, y0 = box[:2]
    bad = palette_rgb("YlGnBu_r")[BAD_INDEX]
    # Rows 10..13 from the bottom are image rows 36..39 from the top.
    block = decoded[0][y0 + 36 * 8 : y0 + 40 * 8, x0 + 40 * 8 : x0 + 44 * 8]
    assert np.all(block == bad)
    assert count_color(decoded[1], bad) == 0


def test_same_input_same_bytes():
    assert movie()[0] == movie()[0]


def test_mp4_or_a_clear_error(tmp_path, monkeypatch):
    if MP4_AVAILABLE:
        imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
        payload, media_type = movie(fmt="mp4")
        assert media_type == "video/mp4"
        assert payload[4:8] == b"ftyp"
        path = tmp_path / "movie.mp4"
        path.write_bytes(payload)
        n_frames, _seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
        assert n_frames == N_FRAMES
    monkeypatch.setattr(movies, "MP4_AVAILABLE", False)
    with pytest.raises(RuntimeError, match="mp4 needs imageio-ffmpeg"):
        movie(fmt="mp4")


needs_mp4 = pytest.mark.skipif(not MP4_AVAILABLE, reason="mp4 needs imageio-ffmpeg")


def decode_mp4(payload, tmp_path):
    """Return the mp4's frames as (height, width, 3) RGB arrays."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    path = tmp_path / "movie.mp4"
    path.write_bytes(payload)
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), str(tmp_path / "frame-%04d.png")]
    subprocess.run(command, check=True)
    return [np.asarray(Image.open(frame).convert("RGB")) for frame in sorted(tmp_path.glob("frame-*.png"))]


def video_image_box(rgb):
    """Return the (x0, y0, x1, y1) box of a decoded video frame's pixels: the rows and columns mostly coloured.

    Decoded colours are near the palette's, not on it, so `image_box` cannot be used: the frame's pixels are
    those neither near-black (the background) nor near-white (text), and its box the rows and columns that are
    mostly such pixels (text and the marker are a few).
    """
    coloured = (rgb.astype(int).sum(axis=-1) > 60) & ~np.all(rgb > 200, axis=-1)
    rows = np.flatnonzero(coloured.mean(axis=1) > 0.5)
    cols = np.flatnonzero(coloured.mean(axis=0) > 0.5)
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


@needs_mp4
def test_mp4_same_frames_same_bytes():
    assert movie(fmt="mp4")[0] == movie(fmt="mp4")[0]


@needs_mp4
def test_mp4_frames_show_what_the_gif_frames_show(tmp_path):
    """The palette reaches ffmpeg with the frames: each decoded mp4 frame matches the GIF frame's colours."""
    _, gif_frames = default_movie_frames()
    mp4_frames = decode_mp4(movie(fmt="mp4")[0], tmp_path)
    assert len(mp4_frames) == len(gif_frames) == N_FRAMES
    gif_box, mp4_box = image_box(gif_frames[0]), video_image_box(mp4_frames[0])
    assert mp4_box[0] % 8 == 0 and mp4_box[1] % 8 == 0, "the frame's pixels start on H.264's block grid"
    assert mp4_box[2] - mp4_box[0] == gif_box[2] - gif_box[0] == 8 * SIZE
    for k in (0, FLAGGED, N_FRAMES - 1):
        gx0, gy0, gx1, gy1 = gif_box
        mx0, my0, mx1, my1 = mp4_box
        gif_pixels = gif_frames[k][gy0:gy1, gx0:gx1].astype(float)
        mp4_pixels = mp4_frames[k][my0:my1, mx0:mx1].astype(float)
        # YUV 4:2:0 and the encoder move colours a little; a wrong palette or a shifted frame moves them a lot.
        assert np.sqrt(np.mean((gif_pixels - mp4_pixels) ** 2)) < 6, k
    red = palette_rgb("YlGnBu_r")[RED_INDEX].astype(float)
    flagged_border = mp4_frames[FLAGGED][mp4_box[1] - 2, mp4_box[0] : mp4_box[2]].astype(float)
    assert np.all(np.abs(flagged_border - red).max(axis=-1) < 40), "the flagged frame's red border"


def test_inputs_must_agree():
    frames, times, cadences, quality = synthetic_frames()
    with pytest.raises(ValueError):
        render_movie(FrameStack(frames, times[:-1], cadences, quality), TARGET_XY, MovieStyle())
    with pytest.raises(ValueError):
        render_movie(FrameStack(frames[0], times, cadences, quality), TARGET_XY, MovieStyle())


def test_frame_label_says_frame_n_where_tesscut_wrote_no_cadence():
    assert movies._frame_label(3, 1334.45, 0) == "BTJD 1334.4500  frame 3"
    assert movies._frame_label(3, 1334.45, 1234) == "BTJD 1334.4500  cadence 1234"


def test_colorbar_and_scale_change_the_size():
    plain = Image.open(io.BytesIO(movie()[0]))
    with_bar = Image.open(io.BytesIO(movie(style=MovieStyle(colorbar=True))[0]))
    bigger = Image.open(io.BytesIO(movie(style=MovieStyle(scale=10, annotate=False))[0]))
    assert with_bar.size[0] > plain.size[0] and with_bar.size[1] == plain.size[1]
    assert bigger.size == (500, 500)


def test_frame_png_has_the_marker_where_the_target_is():
    frames, *_ = synthetic_frames()
    target = (10.0, 40.0)  # left, near the top: y counts up from the bottom row
    payload, media_type = render_frame_png(frames[0], START_BTJD, 0, 0, target, MovieStyle(), title="TIC 1")
    assert media_type == "image/png"
    rgb = np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"))
    box = image_box(rgb)
    x0, y0, x1, y1 = box
    inside = rgb[y0:y1, x0:x1]
    white = np.all(inside == palette_rgb("YlGnBu_r")[WHITE_INDEX], axis=-1)
    black = np.all(inside == palette_rgb("YlGnBu_r")[BLACK_INDEX], axis=-1)
    rows, cols = np.nonzero(white & ~black)
    centre_x, centre_y = (target[0] + 0.5) * 8, (SIZE - 0.5 - target[1]) * 8
    assert rows.size > 40
    assert abs(cols.mean() - centre_x) < 2 and abs(rows.mean() - centre_y) < 2
    # The ring is hollow: the target's own pixel is still data.
    assert levels_of(inside[int(centre_y) - 2 : int(centre_y) + 2, int(centre_x) - 2 : int(centre_x) + 2]).min() >= 0
    plain = render_frame_png(frames[0], START_BTJD, 0, 0, target, MovieStyle(annotate=False))[0]
    plain_rgb = np.asarray(Image.open(io.BytesIO(plain)).convert("RGB"))
    assert count_color(plain_rgb, palette_rgb("YlGnBu_r")[WHITE_INDEX]) == 0
    assert plain_rgb.shape[:2] == (400, 400)


# ---------------------------------------------------------------- light curves

PERIOD_DAYS = 3.5
EPOCH_BTJD = 1326.0
HALF_DURATION_DAYS = 0.06
DEPTH = 0.01


def synthetic_lightcurve(n=20_000, gap_btjd=None, seed=1):
    rng = np.random.default_rng(seed)
    time = np.linspace(1325.3, 1353.2, n)
    if gap_btjd is not None:
        time = time[(time < gap_btjd[0]) | (time > gap_btjd[1])]
    phase = (time - EPOCH_BTJD + PERIOD_DAYS / 2) % PERIOD_DAYS - PERIOD_DAYS / 2
    model = np.where(np.abs(phase) < HALF_DURATION_DAYS, -DEPTH, 0.0)
    flux = model + rng.normal(0.0, 0.001, time.size)
    flux[100:150] = np.nan
    return time, phase, flux, model


def decode_png(payload):
    return np.asarray(Image.open(io.BytesIO(payload)).convert("RGB")).astype(int)


def axes_interior(rgb):
    """Return (x0, y0, x1, y1) inside the axes' spines: the columns and rows that are mostly black."""
    dark = rgb.max(axis=2) < 60
    cols = np.flatnonzero(dark.mean(axis=0) > 0.6)
    rows = np.flatnonzero(dark.mean(axis=1) > 0.6)
    return cols.min() + 2, rows.min() + 2, cols.max() - 1, rows.max() - 1


def hex_rgb(color):
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])


def near(rgb, color, tolerance=40):
    return np.abs(rgb - hex_rgb(color)).sum(axis=-1) < tolerance


def test_phase_plot_has_its_size_and_the_dip_at_phase_zero():
    time, phase, flux, model = synthetic_lightcurve()
    payload, media_type = render_lightcurve_png(
        PlotSeries(time, phase, flux, model), title="Detrended Lightcurve (TIC 1)"
    )
    assert media_type == "image/png"
    rgb = decode_png(payload)
    assert rgb.shape == (500, 1000, 3)
    x0, y0, x1, y1 = axes_interior(rgb)
    assert x1 - x0 > 800 and y1 - y0 > 350
    points = near(rgb[y0:y1, x0:x1], POINT_COLOR)
    assert points.sum() > 5000
    lowest_row = np.array([np.flatnonzero(col).max() if col.any() else -1 for col in points.T])
    deepest_col = int(np.argmax(lowest_row))
    # Phase runs over ±P/2 and the dip is at 0 ± 1.44 h: the middle of the axes.
    dip_half_width = HALF_DURATION_DAYS / PERIOD_DAYS * (x1 - x0)
    assert abs(deepest_col - (x1 - x0) / 2) <= dip_half_width + 2
    # And well below everything outside the dip.
    outside = np.abs(np.arange(x1 - x0) - (x1 - x0) / 2) > dip_half_width + 5
    assert lowest_row[deepest_col] - lowest_row[outside].max() > 50


def test_time_plot_leaves_gaps_empty_and_shades_the_highlight():
    gap = (1338.0, 1341.0)
    time, phase, flux, model = synthetic_lightcurve(gap_btjd=gap)
    payload, _ = render_lightcurve_png(
        PlotSeries(time, phase, flux, model),
        PlotView(x="time", highlight_btjd=(1346.0, 1347.0)),
        title="Detrended Lightcurve (TIC 1)",
    )
    rgb = decode_png(payload)
    x0, y0, x1, y1 = axes_interior(rgb)
    interior = rgb[y0:y1, x0:x1]
    t_min, t_max = time.min(), time.max()

    def column(btjd):
        return int(round((btjd - t_min) / (t_max - t_min) * (x1 - x0)))

    drawn = interior.min(axis=2) < 200  # anything but white and the pale highlight
    in_gap = drawn[:, column(gap[0]) + 3 : column(gap[1]) - 3]
    assert in_gap.sum() == 0
    assert drawn[:, column(gap[0]) - 20 : column(gap[0]) - 3].sum() > 100
    shade = near(interior, "#ffe8bf", tolerance=20)  # HIGHLIGHT_SHADE at alpha 0.5 over white
    shade_cols = np.flatnonzero(shade.sum(axis=0) > 0.3 * (y1 - y0))
    assert shade_cols.size > 0
    assert column(1346.0) - 2 <= shade_cols.min() and shade_cols.max() <= column(1347.0) + 2


def test_phase_plot_colours_the_highlighted_window():
    time, phase, flux, model = synthetic_lightcurve()
    plain = decode_png(render_lightcurve_png(PlotSeries(time, phase, flux, model), title="t")[0])
    marked = decode_png(
        render_lightcurve_png(
            PlotSeries(time, phase, flux, model), PlotView(highlight_btjd=(1334.4, 1334.5)), title="t"
        )[0]
    )
    assert near(plain, HIGHLIGHT_COLOR).sum() == 0
    assert near(marked, HIGHLIGHT_COLOR).sum() > 50


def test_start_end_select_rows_and_bytes_are_deterministic():
    time, phase, flux, model = synthetic_lightcurve()
    series = PlotSeries(time, phase, flux, model)
    whole = render_lightcurve_png(series, PlotView(x="time"), title="t")[0]
    again = render_lightcurve_png(series, PlotView(x="time"), title="t")[0]
    window = render_lightcurve_png(series, PlotView(x="time", start_btjd=1334.0, end_btjd=1335.0), title="t")
    assert whole == again
    assert window[0] != whole
    custom = decode_png(
        render_lightcurve_png(
            PlotSeries(time, phase, flux, None), size=PlotSize(width_px=640, height_px=320), title="t"
        )[0]
    )
    assert custom.shape == (320, 640, 3)


def test_a_zoom_draws_its_few_points_bigger_and_a_series_without_model_has_no_model_legend():
    time, phase, flux, _ = synthetic_lightcurve()
    view = PlotView(x="time", start_btjd=1334.0, end_btjd=1334.3, highlight_btjd=(1334.1, 1334.2))
    shown = np.count_nonzero((time >= 1334.0) & (time <= 1334.3) & np.isfinite(flux))
    rgb = decode_png(render_lightcurve_png(PlotSeries(time, phase, flux, None), view, title="t")[0])
    assert near(rgb, POINT_COLOR).sum() / shown > 6  # a dot of several pixels each, not a speck
    assert near(rgb, "#ffe8bf", tolerance=20).sum() > 0  # the highlight (and its legend entry) is there...
    assert near(rgb, MODEL_COLOR).sum() == 0  # ...and no "Transit model" line for a model there is not
