"""Aperture photometry, detrending and QUALITY names (science.photometry), and reading cutouts in chunks (tpf)."""

import io
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from service.science import photometry
from service.science.events import find_events
from service.services.ffi_photometry import measure_cutout
from service.tpf import PixelTable

ROOT = Path(__file__).resolve().parents[2]
SKY_E_PER_S = 100.0


def star(shape, x, y, flux, sigma_px=0.8):
    """A Gaussian star of ``flux`` e-/s at (x, y), sampled at pixel centres and normalised on the image."""
    rows, columns = np.indices(shape)
    profile = np.exp(-((columns - x) ** 2 + (rows - y) ** 2) / (2 * sigma_px**2))
    return flux * profile / profile.sum()


def noisy(image, sigma, seed=0):
    return image + np.random.default_rng(seed).normal(0, sigma, image.shape)


# ---------------------------------------------------------------------------------------------------------------
# The aperture


def test_aperture_holds_the_star_and_not_its_neighbour_beyond_the_saddle():
    shape = (30, 30)
    image = noisy(SKY_E_PER_S + star(shape, 12.3, 14.7, 5000) + star(shape, 17.0, 14.5, 3000), 0.05)
    aperture = photometry.threshold_aperture(image, (12.3, 14.7))
    assert aperture.method == "threshold"
    assert aperture.mask[15, 12]  # the star's own pixel (row 15, column 12)
    assert not aperture.mask[14, 17] and not aperture.mask[15, 17]  # the neighbour's peak stays out
    columns = [x for x, _ in aperture.pixels_xy]
    assert max(columns) <= 15, "the aperture stops at the saddle between the two stars"
    # ...whereas a plain threshold region (lightkurve's) would run from one star into the other.
    assert image[14, 17] > aperture.level and image[14, 15] > aperture.level


def test_aperture_of_a_faint_star_is_a_small_disk():
    shape = (20, 20)
    image = noisy(np.full(shape, SKY_E_PER_S), 1.0, seed=3)
    aperture = photometry.threshold_aperture(image, (10.2, 9.6))
    assert aperture.method == "disk"
    assert aperture.mask[10, 10]
    assert 5 <= aperture.mask.sum() <= 9
    xs, ys = np.array(aperture.pixels_xy).T
    assert np.all(np.hypot(xs - 10.2, ys - 9.6) <= photometry.DISK_RADIUS_PX)


def test_aperture_of_a_bright_star_is_capped_to_the_nearest_pixels():
    shape = (40, 40)
    image = noisy(SKY_E_PER_S + star(shape, 20, 20, 5e7, sigma_px=3.0), 0.05)
    aperture = photometry.threshold_aperture(image, (20, 20))
    assert aperture.mask.sum() == photometry.MAX_APERTURE_PIXELS
    xs, ys = np.array(aperture.pixels_xy).T
    assert np.hypot(xs - 20, ys - 20).max() < 6.5  # a compact disk of ~100 pixels, not a ragged edge


def test_aperture_skips_pixels_without_data_and_needs_some():
    image = SKY_E_PER_S + star((10, 10), 4, 4, 2000)
    image[:, 7:] = np.nan  # off the CCD
    aperture = photometry.threshold_aperture(image, (4, 4))
    assert not aperture.mask[:, 7:].any()
    with pytest.raises(ValueError, match="no pixel with data"):
        photometry.threshold_aperture(np.full((5, 5), np.nan), (2, 2))


def test_reference_image_ignores_missing_values_without_warning():
    frames = np.ones((5, 3, 3))
    frames[:, 0, 0] = np.nan  # never measured
    frames[1, 1, 1] = np.nan
    image = photometry.reference_image(frames)
    assert math.isnan(image[0, 0]) and image[1, 1] == 1.0


# ---------------------------------------------------------------------------------------------------------------
# Background and flux


def synthetic_frames(n=200, shape=(25, 25), star_flux=5000.0, seed=1):
    """Frames of a star on a sky that varies by ±30 % over the frames, with Poisson-like noise and its errors."""
    sky = SKY_E_PER_S * (1 + 0.3 * np.sin(np.linspace(0, 6, n)))
    model = sky[:, None, None] + star(shape, 12.4, 11.8, star_flux)[None]
    sigma = np.sqrt(model / 1440.0)
    flux = model + np.random.default_rng(seed).normal(0, 1, model.shape) * sigma
    return flux.astype(np.float32), sigma.astype(np.float32), sky


def test_background_subtraction_recovers_the_injected_flux():
    flux, flux_err, sky = synthetic_frames()
    reference = photometry.reference_image(flux)
    aperture = photometry.threshold_aperture(reference, (12.4, 11.8))
    background = photometry.background_pixels(reference, aperture.mask, (12.4, 11.8))
    assert not (background & aperture.mask).any()
    measured = photometry.measure_frames(flux, flux_err, aperture.mask, background)

    captured = star(flux.shape[1:], 12.4, 11.8, 5000.0)[aperture.mask].sum()
    assert captured > 0.97 * 5000  # the threshold aperture holds nearly all of the star
    assert np.median(measured.flux) == pytest.approx(captured, rel=2e-3)
    # The sky swings by 60 e-/s a pixel; the net flux does not follow it.
    assert abs(np.corrcoef(measured.flux, sky)[0, 1]) < 0.3
    np.testing.assert_allclose(measured.background, sky * aperture.mask.sum(), rtol=2e-3)
    # FLUX_ERR describes the scatter it claims to.
    assert np.std(measured.flux) == pytest.approx(np.median(measured.flux_err), rel=0.15)
    assert np.median(measured.centroid_col) == pytest.approx(12.4, abs=0.05)
    assert np.median(measured.centroid_row) == pytest.approx(11.8, abs=0.05)


def test_an_asteroid_over_the_background_pixels_does_not_move_the_background():
    flux, flux_err, _ = synthetic_frames(n=50)
    reference = photometry.reference_image(flux)
    aperture = photometry.threshold_aperture(reference, (12.4, 11.8))
    background = photometry.background_pixels(reference, aperture.mask, (12.4, 11.8))
    clean = photometry.measure_frames(flux, flux_err, aperture.mask, background)
    crossed = flux.copy()
    crossed[10] += star(flux.shape[1:], 3.0, 3.0, 2000.0).astype(np.float32)  # far from the star
    measured = photometry.measure_frames(crossed, flux_err, aperture.mask, background)
    assert measured.flux[10] == pytest.approx(clean.flux[10], abs=3 * clean.flux_err[10])


def test_a_frame_with_a_missing_aperture_pixel_has_no_flux():
    flux, flux_err, _ = synthetic_frames(n=10)
    reference = photometry.reference_image(flux)
    aperture = photometry.threshold_aperture(reference, (12.4, 11.8))
    background = photometry.background_pixels(reference, aperture.mask, (12.4, 11.8))
    flux[3, 12, 12] = np.nan
    flux[4][background] = np.nan  # no sky at all in frame 4
    measured = photometry.measure_frames(flux, flux_err, aperture.mask, background)
    assert math.isnan(measured.flux[3]) and math.isnan(measured.centroid_col[3])
    assert math.isnan(measured.background[4]) and np.isfinite(measured.flux[[0, 1, 2, 5]]).all()


def test_measuring_in_chunks_is_measuring_at_once():
    flux, flux_err, _ = synthetic_frames(n=100)
    reference = photometry.reference_image(flux)
    aperture = photometry.threshold_aperture(reference, (12.4, 11.8))
    background = photometry.background_pixels(reference, aperture.mask, (12.4, 11.8))
    whole = photometry.measure_frames(flux, flux_err, aperture.mask, background)
    parts = [
        photometry.measure_frames(flux[i : i + 7], flux_err[i : i + 7], aperture.mask, background)
        for i in range(0, 100, 7)
    ]
    joined = photometry.Photometry.joined(parts)
    for name in ("flux", "flux_err", "background", "centroid_col", "centroid_row"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(whole, name))


# ---------------------------------------------------------------------------------------------------------------
# Reading a cutout in chunks


def write_cutout(path, frames=300, side=15, seed=2):
    """A TESScut-shaped file: PIXELS (TIME, CADENCENO, FLUX and FLUX_ERR images, QUALITY) and an APERTURE image."""
    flux, flux_err, _ = synthetic_frames(n=frames, shape=(side, side), seed=seed)
    quality = np.zeros(frames, dtype=np.int32)
    quality[::50] = 32
    columns = [
        fits.Column(name="TIME", format="D", array=1325.3 + np.arange(frames) / 48),
        fits.Column(name="CADENCENO", format="J", array=np.zeros(frames, dtype=np.int32)),
        fits.Column(name="FLUX", format=f"{side * side}E", dim=f"({side},{side})", array=flux),
        fits.Column(name="FLUX_ERR", format=f"{side * side}E", dim=f"({side},{side})", array=flux_err),
        fits.Column(name="QUALITY", format="J", array=quality),
    ]
    aperture = fits.ImageHDU(np.ones((side, side), dtype=np.int32), name="APERTURE")
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns, name="PIXELS"), aperture]).writeto(path)
    return flux, flux_err


def test_chunked_reading_equals_whole_reading(tmp_path):
    path = tmp_path / "cutout.fits"
    flux, flux_err = write_cutout(path)
    with fits.open(path) as hdus:
        table = PixelTable.of(hdus)
        whole = np.asarray(hdus["PIXELS"].data["FLUX_ERR"])
    chunks = list(table.chunks(path, ["FLUX", "FLUX_ERR"], 64))
    assert [len(c["FLUX"]) for c in chunks] == [64, 64, 64, 64, 44]
    np.testing.assert_array_equal(np.concatenate([c["FLUX"] for c in chunks]), flux)
    np.testing.assert_array_equal(np.concatenate([c["FLUX_ERR"] for c in chunks]), whole)
    assert chunks[0]["FLUX"].dtype == np.float32 and chunks[0]["FLUX"].dtype.isnative
    # The same rows from an open file handle and from bytes in memory.
    rows = [0, 7, 299]
    with path.open("rb") as handle:
        from_handle = table.read_rows(handle, ["FLUX"], rows)["FLUX"]
    from_memory = table.read_rows(io.BytesIO(path.read_bytes()), ["FLUX"], rows)["FLUX"]
    np.testing.assert_array_equal(from_handle, flux[rows])
    np.testing.assert_array_equal(from_memory, flux[rows])
    with pytest.raises(ValueError, match="not in the PIXELS table"):
        table.read_rows(path, ["FLUX"], [300])


def test_a_truncated_cutout_is_refused(tmp_path):
    path = tmp_path / "cutout.fits"
    write_cutout(path, frames=20)
    with fits.open(path) as hdus:
        table = PixelTable.of(hdus)
    cut = tmp_path / "cut.fits"
    cut.write_bytes(path.read_bytes()[: table.start + 5 * table.row_bytes])
    with pytest.raises(ValueError, match="ends early"):
        list(table.chunks(cut, ["FLUX"], 8))


def test_measure_cutout_reads_the_file_in_chunks_to_the_same_light_curve(tmp_path):
    path = tmp_path / "cutout.fits"
    flux, flux_err = write_cutout(path)
    measured = measure_cutout(path, 0.0, 0.0)  # no WCS: the star is taken at the cutout's centre
    assert measured.target_xy == (7.0, 7.0)
    at_once = photometry.measure_frames(flux, flux_err, measured.aperture.mask, measured.background)
    np.testing.assert_array_equal(measured.photometry.flux, at_once.flux)
    from_memory = measure_cutout(io.BytesIO(path.read_bytes()), 0.0, 0.0)
    np.testing.assert_array_equal(from_memory.photometry.flux, measured.photometry.flux)
    assert measured.usable.sum() == 300 - 6  # the six momentum dumps are left out of searches


@pytest.mark.process  # the measuring runs in a child Python, whose peak memory is its own
def test_measuring_a_big_cutout_does_not_page_it_in(tmp_path):
    path = tmp_path / "big.fits"
    write_cutout(path, frames=1500, side=100)  # 120 MB
    size_mb = path.stat().st_size / 2**20
    probe = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from service.services.ffi_photometry import measure_cutout
        def peak(): return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) // 1024
        before = peak()
        with open({str(path)!r}, 'rb') as handle:
            measured = measure_cutout(handle, 0.0, 0.0)
        assert measured.photometry.flux.size == 1500
        print(peak() - before)
        """
    )
    grown_mb = int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert size_mb > 100
    assert grown_mb < size_mb / 4, f"measuring grew peak memory by {grown_mb} MB for a {size_mb:.0f} MB file"


# ---------------------------------------------------------------------------------------------------------------
# Detrending and QUALITY


def test_detrending_flattens_a_slow_trend_and_keeps_a_day_long_dip():
    time = 1325.3 + np.arange(1300) / 48
    # A 2 % swing over 10 days: at the dip the trend climbs 1.2 % a day, steeper than the 1 % dip is deep, where a
    # plain running median would take the dip into the trend.
    trend = 1000 * (1 + 0.02 * np.sin(2 * np.pi * (time - time[0]) / 10))
    dip = np.where(np.abs(time - 1334.45) < 0.5, 0.99, 1.0)  # 1 % for a day
    flux = trend * dip * (1 + np.random.default_rng(4).normal(0, 1e-3, time.size))
    relative = photometry.detrend(time, flux)
    outside = np.abs(time - 1334.45) > 1
    assert np.std(flux[outside] / np.median(flux) - 1) > 0.012
    assert np.std(relative[outside]) < 1.6e-3  # the swing is gone (the noise is 1e-3), the ends included
    assert abs(np.median(relative[:24])) < 1e-3 and abs(np.median(relative[-24:])) < 1e-3
    assert np.median(relative[np.abs(time - 1334.45) < 0.4]) == pytest.approx(-0.01, abs=1e-3)
    events = find_events(time, relative, max_events=3)
    assert events and all(e.kind == "dip" and abs(e.t0_btjd - 1334.45) < 0.5 for e in events)


def test_detrending_leaves_out_unusable_cadences_and_flags_what_it_cannot_tell():
    time = np.arange(100) / 48
    flux = np.full(100, 500.0)
    flux[50] = 5000.0  # a momentum dump's wild value, left out of the trend
    relative = photometry.detrend(time, flux, usable=np.arange(100) != 50)
    assert relative[0] == pytest.approx(0.0, abs=1e-12) and relative[50] == pytest.approx(9.0)
    assert np.isnan(photometry.detrend(time, -flux)).all()  # a negative trend has no relative flux
    assert np.isnan(photometry.detrend(time[:3], flux[:3])).all()
    assert np.isnan(photometry.detrend(time * 1e6, flux)).all()  # a broken TIME column, not a light curve


def test_quality_names():
    assert photometry.quality_names(0) == []
    assert photometry.quality_names(32 | 2048) == ["momentum dump", "stray light"]
    assert photometry.quality_names(4096 | (1 << 20)) == ["scattered light", "bit 1048576"]
    assert photometry.quality_names(-1)[:2] == ["attitude tweak", "safe mode"]  # a 32-bit field, all set
    assert photometry.SEVERE_QUALITY & 32 and not photometry.SEVERE_QUALITY & (2048 | 4096)


def test_window_quality_is_the_or_of_the_cadences_inside():
    time = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    quality = np.array([1, 32, 2048, 8, 4])
    assert photometry.window_quality(time, quality, 1.5, 3.0) == 32 | 2048
    assert photometry.window_quality(time, quality, 3.5, 4.5) == 0
