"""Diagnosis pictures: decode the PNGs and check what is drawn where, not just that bytes came back."""

import dataclasses
import io

import matplotlib
import numpy as np
import pytest
from PIL import Image

from service.rendering import diagnosis_pictures, pixel_grid
from service.rendering.diagnosis_pictures import (
    DiagnosisPicture,
    Mark,
    PixelCurves,
    render_diagnosis_png,
    render_pixels_png,
)

NY, NX = 30, 40
TARGET_XY = (20.0, 15.0)


def decode(payload):
    assert payload[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(payload)).convert("RGB")).astype(int)


def star(xy, flux=1000.0, shape=(NY, NX)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return flux * np.exp(-((xx - xy[0]) ** 2 + (yy - xy[1]) ** 2) / 2.0)


def picture(**changes):
    reference = 10.0 + star(TARGET_XY)
    in_event = 10.0 + 0.9 * star(TARGET_XY)
    aperture = np.zeros((NY, NX), dtype=bool)
    aperture[14:17, 19:22] = True
    base = DiagnosisPicture(
        reference=reference,
        in_event=in_event,
        difference=reference - in_event,
        target_xy=TARGET_XY,
        aperture=aperture,
        centroid_xy=(20.1, 15.0),
        track=None,
        known=(),
        title="TIC 1 · sector 1 · BTJD 1334.00–1335.00",
        verdict="on_target (0.95): the dip is the target's.",
    )
    return dataclasses.replace(base, **changes)


def image_xy(panel_index, column, row, shape=(NY, NX)):
    """Return the (x, y) image pixel (y down) of cutout (column, row) on a panel."""
    panel = diagnosis_pictures._panel(panel_index, shape)
    x, y = panel.to_px(column, row)
    return round(float(x)), round(diagnosis_pictures.HEIGHT_PX - float(y))


def test_diagnosis_png_is_1200_by_450_and_deterministic():
    payload, media_type = render_diagnosis_png(picture())
    assert media_type == "image/png"
    assert decode(payload).shape == (450, 1200, 3)
    assert render_diagnosis_png(picture())[0] == payload


def test_a_known_object_changes_the_pixels_at_its_place_on_every_panel():
    flat = picture(reference=np.full((NY, NX), 5.0), in_event=np.full((NY, NX), 5.0))
    flat = dataclasses.replace(flat, difference=np.zeros((NY, NX)), aperture=np.zeros((NY, NX), bool))
    flat = dataclasses.replace(flat, centroid_xy=None, target_xy=(float("nan"), float("nan")))
    without = decode(render_diagnosis_png(flat)[0])
    mark = Mark("(1) Ceres", (8.0, 22.0))
    with_mark = decode(render_diagnosis_png(dataclasses.replace(flat, known=(mark,)))[0])
    changed = np.abs(with_mark - without).sum(axis=2) > 30
    for index in range(3):
        x, y = image_xy(index, *mark.xy)
        # The circle's ring is ~10 px from its centre; its centre itself is left open (the pixel shows through).
        ring = changed[y - 16 : y + 17, x - 16 : x + 17]
        assert ring.sum() > 40, f"panel {index}: no circle at the mark"
        assert not changed[y - 2 : y + 3, x - 2 : x + 3].any()
        far_x, far_y = image_xy(index, 32.0, 5.0)
        assert not changed[far_y - 16 : far_y + 17, far_x - 16 : far_x + 17].any()


def test_a_matched_mark_is_drawn_bigger_and_in_another_colour():
    flat = picture(known=(Mark("A", (10.0, 10.0)),))
    matched = picture(known=(Mark("A", (10.0, 10.0), matched=True),))
    plain, emphasised = (decode(render_diagnosis_png(p)[0]) for p in (flat, matched))
    x, y = image_xy(0, 10.0, 10.0)
    gold = np.array(matplotlib.colors.to_rgb(diagnosis_pictures.MATCHED_COLOR)) * 255
    near = lambda img: (np.abs(img[y - 25 : y + 26, x - 25 : x + 26] - gold).sum(axis=2) < 40).sum()  # noqa: E731
    assert near(plain) == 0
    assert near(emphasised) > 40


def test_an_object_off_the_image_is_a_triangle_on_the_nearest_edge():
    base = decode(render_diagnosis_png(picture())[0])
    off = decode(render_diagnosis_png(picture(known=(Mark("far", (-10.0, 20.0)),)))[0])
    changed = np.abs(off - base).sum(axis=2) > 30
    x, y = image_xy(0, 0.0, 20.0)
    assert changed[y - 8 : y + 9, x - 12 : x + 9].sum() > 20


def test_the_difference_panel_puts_zero_at_the_colormap_centre_even_when_one_sign_dominates():
    difference = np.zeros((NY, NX))
    difference[5:10, 5:10] = 100.0  # only positive values: a min..max scale would make 0 the bluest colour
    difference[20:25, 30:35] = -10.0
    rgb = decode(render_diagnosis_png(picture(difference=difference, known=()))[0])
    cmap = matplotlib.colormaps[diagnosis_pictures.DIFFERENCE_CMAP]
    centre = np.array(cmap(0.5)[:3]) * 255
    x, y = image_xy(2, 2.0, 25.0)
    assert np.abs(rgb[y, x] - centre).max() <= 3
    x, y = image_xy(2, 7.0, 7.0)
    assert np.abs(rgb[y, x] - np.array(cmap(1.0)[:3]) * 255).max() <= 3  # the top of the range: darkest red
    x, y = image_xy(2, 32.0, 22.0)
    light_blue = rgb[y, x]
    assert light_blue[2] > light_blue[0]  # blue, and much lighter than the bottom of the map
    assert np.abs(light_blue - np.array(cmap(0.45)[:3]) * 255).max() <= 6


def test_row_zero_is_at_the_bottom():
    reference = np.zeros((NY, NX))
    reference[0, :] = 1000.0  # a bright bottom row
    rgb = decode(render_diagnosis_png(picture(reference=reference, known=()))[0])
    bottom, top = image_xy(0, 2.0, 0.0), image_xy(0, 2.0, NY - 1.0)
    assert rgb[bottom[1], bottom[0]].sum() > rgb[top[1], top[0]].sum() + 200  # viridis: yellow over dark purple


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("in_event", np.zeros((NY, NX + 1))),
        ("difference", np.zeros((NY - 1, NX))),
        ("aperture", np.zeros((NX, NY), dtype=bool)),
        ("reference", np.zeros((NY, NX, 2))),
    ],
)
def test_mismatched_images_raise_value_error(field, value):
    with pytest.raises(ValueError, match="shape"):
        render_diagnosis_png(picture(**{field: value}))


def test_nan_and_constant_images_draw_without_warnings():
    nan = np.full((NY, NX), np.nan)
    holes = 10.0 + star(TARGET_XY)
    holes[3, 4] = np.nan
    # filterwarnings = error: a RuntimeWarning from an all-NaN percentile or a 0/0 stretch would fail here.
    for changes in (
        {"reference": nan, "in_event": nan, "difference": nan},
        {"reference": np.full((NY, NX), 7.0), "in_event": np.full((NY, NX), 7.0), "difference": np.zeros((NY, NX))},
        {"reference": holes, "track": ((1334.0, float("nan"), 1.0),), "centroid_xy": (float("nan"), 2.0)},
    ):
        assert decode(render_diagnosis_png(picture(**changes))[0]).shape == (450, 1200, 3)
    rgb = decode(render_diagnosis_png(picture(reference=holes))[0])
    x, y = image_xy(0, 4.0, 3.0)
    grey = np.array(matplotlib.colors.to_rgb(diagnosis_pictures.BAD_COLOR)) * 255
    assert np.abs(rgb[y, x] - grey).max() <= 2


def test_a_track_draws_its_points_and_a_line_across_the_panel():
    track = tuple((1334.0 + i / 10, 5.0 + 3 * i, 5.0 + 2 * i) for i in range(5))
    base = decode(render_diagnosis_png(picture())[0])
    with_track = decode(render_diagnosis_png(picture(track=track))[0])
    changed = np.abs(with_track - base).sum(axis=2) > 30
    for column, row in ((5.0, 5.0), (17.0, 13.0), (35.0, 25.0)):  # two points and, beyond them, the fitted line
        x, y = image_xy(2, column, row)
        assert changed[y - 3 : y + 4, x - 3 : x + 4].any()


# Pixel grids.

N_FRAMES = 200


def curves(k, **changes):
    time = 1334.0 + np.arange(N_FRAMES) / 48.0
    rng = np.random.default_rng(k)
    flux = 100.0 + rng.normal(0, 1, (N_FRAMES, k, k))
    aperture = np.zeros((k, k), dtype=bool)
    aperture[k // 2, k // 2] = True
    base = PixelCurves(
        time_btjd=time,
        flux=flux,
        origin_xy=(10, 20),
        aperture=aperture,
        target_xy=(10.0 + k // 2, 20.0 + k // 2),
        window=(1335.0, 1335.5),
        flagged=np.zeros(N_FRAMES, dtype=bool),
        title="pixels",
    )
    return dataclasses.replace(base, **changes)


def color(name):
    return np.array(matplotlib.colors.to_rgb(name)) * 255


def grid_geometry(k):
    cell = min(pixel_grid._MAX_CELL_PX, max(pixel_grid._MIN_CELL_PX, round(pixel_grid._GRID_PX / k)))
    height = pixel_grid._TOP_PX + k * cell + pixel_grid._BOTTOM_PX
    return cell, height


def runs(line):
    """Return the background colours met along a line of pixels, one per run (the white separators end a run)."""
    names = (pixel_grid.CELL_COLOR, pixel_grid.APERTURE_CELL_COLOR, pixel_grid.NO_DATA_CELL_COLOR)
    kinds = [next((name for name in names if np.abs(pixel - color(name)).max() <= 2), None) for pixel in line]
    return [kind for i, kind in enumerate(kinds) if kind and (i == 0 or kinds[i - 1] != kind)]


@pytest.mark.parametrize("k", [3, 7])
def test_the_grid_has_k_by_k_cells_with_the_aperture_where_it_is(k):
    aperture = np.zeros((k, k), dtype=bool)
    aperture[0, 0] = True  # row 0, column 0: the bottom left cell
    aperture[k - 1, 1] = True  # the top row, second column
    rgb = decode(render_pixels_png(curves(k, aperture=aperture))[0])
    cell, height = grid_geometry(k)
    assert rgb.shape[0] == height
    bottom_band = height - pixel_grid._BOTTOM_PX - round(0.04 * cell)  # below the curves in row 0
    top_band = height - pixel_grid._BOTTOM_PX - round((k - 1 + 0.04) * cell)
    across = slice(pixel_grid._LEFT_PX, pixel_grid._LEFT_PX + k * cell)
    green, plain = pixel_grid.APERTURE_CELL_COLOR, pixel_grid.CELL_COLOR
    assert runs(rgb[bottom_band, across]) == [green] + [plain] * (k - 1)
    assert runs(rgb[top_band, across]) == [plain, green] + [plain] * (k - 2)
    right_pad = pixel_grid._LEFT_PX + round(0.96 * cell)  # right of the curves in column 0, left of the separator
    column = rgb[height - pixel_grid._BOTTOM_PX - k * cell : height - pixel_grid._BOTTOM_PX, right_pad]
    assert runs(column) == [plain] * (k - 1) + [green]  # read top to bottom: row 0 is the bottom cell


def test_the_grid_grows_with_k_and_k_11_stays_near_900_px():
    sizes = {k: Image.open(io.BytesIO(render_pixels_png(curves(k))[0])).size for k in (3, 5, 11)}
    assert sizes[3][0] < sizes[5][0] <= sizes[11][0]
    assert 850 <= sizes[11][0] <= 1000 and 900 <= sizes[11][1] <= 1050


def test_the_window_is_shaded_in_every_cell():
    k = 3
    flat = curves(k, flux=np.full((N_FRAMES, k, k), 5.0), aperture=np.zeros((k, k), dtype=bool))
    rgb = decode(render_pixels_png(flat)[0])
    cell, height = grid_geometry(k)
    # The window starts a day into a 4.15-day span: about a quarter of the way across each cell.
    shade = color(pixel_grid.HIGHLIGHT_SHADE) * 0.7 + color(pixel_grid.CELL_COLOR) * 0.3
    for i in range(k):
        for j in range(k):
            x = pixel_grid._LEFT_PX + round((j + 0.05 + 0.9 * (1.1 / 4.146)) * cell)
            y = height - pixel_grid._BOTTOM_PX - round((i + 0.3) * cell)
            assert np.abs(rgb[y, x] - shade).max() <= 4, (i, j)


def test_flagged_and_nan_frames_and_empty_or_flat_pixels_draw_without_warnings():
    k = 5
    flux = 100.0 + np.random.default_rng(0).normal(0, 1, (N_FRAMES, k, k))
    flux[:, 0, 0] = np.nan  # a dead pixel
    flux[:, 1, 1] = 42.0  # a flat one
    flux[7] = np.nan  # a lost frame
    flagged = np.zeros(N_FRAMES, dtype=bool)
    flagged[50:60] = True
    time = 1334.0 + np.arange(N_FRAMES) / 48.0
    time[3] = np.nan
    rgb = decode(render_pixels_png(curves(k, flux=flux, flagged=flagged, time_btjd=time))[0])
    cell, height = grid_geometry(k)
    bottom_band = height - pixel_grid._BOTTOM_PX - round(0.5 * cell)
    no_data = color(pixel_grid.NO_DATA_CELL_COLOR)
    dead = rgb[bottom_band, pixel_grid._LEFT_PX : pixel_grid._LEFT_PX + cell]
    live = rgb[bottom_band, pixel_grid._LEFT_PX + cell : pixel_grid._LEFT_PX + 2 * cell]
    # The dead pixel's cell is grey but for the window's shading and the separators; its neighbour is not grey.
    assert (np.abs(dead - no_data).max(axis=1) <= 2).mean() > 0.8
    assert (np.abs(live - no_data).max(axis=1) <= 2).mean() == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"flux": np.zeros((N_FRAMES, 5, 4))}, "flux"),
        ({"flux": np.zeros((N_FRAMES - 1, 5, 5))}, "frames"),
        ({"aperture": np.zeros((4, 4), dtype=bool)}, "aperture"),
        ({"flagged": np.zeros(N_FRAMES - 1, dtype=bool)}, "flagged"),
        ({"time_btjd": np.zeros((0,)), "flux": np.zeros((0, 5, 5)), "flagged": np.zeros(0, bool)}, "time_btjd"),
        ({"window": (1336.0, 1335.0)}, "window"),
        ({"flux": np.zeros((N_FRAMES, 17, 17)), "aperture": np.zeros((17, 17), bool)}, "At most"),
    ],
)
def test_inconsistent_pixel_curves_raise_value_error(changes, message):
    with pytest.raises(ValueError, match=message):
        render_pixels_png(curves(5, **changes))
