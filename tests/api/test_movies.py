"""Movies, frame PNGs and light-curve PNGs through HTTP, against the emulator."""

import asyncio
import io
import zipfile

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image, ImageSequence

from tests.conftest import WEIRD_TCE, WEIRD_TIC
from tests.polling import poll_job

pytestmark = pytest.mark.anyio

MOVIE = f"/tic/{WEIRD_TIC}/movie"
ASTROCUT = "/tesscut/api/v0.1/astrocut"


def expected_frame_count(mast, start, end):
    """The tutorial's rule on the emulator's own time stamps: nearest to start … nearest to end, inclusive."""
    import httpx

    params = {"ra": 340.8004, "dec": -36.3439, "x": 50, "y": 50, "units": "px", "sector": 1}
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(mast.url + ASTROCUT, params=params, timeout=60).content))
    with fits.open(io.BytesIO(archive.read(archive.namelist()[0]))) as hdus:
        time = hdus["PIXELS"].data["TIME"]
    return int(np.argmin(abs(time - end)) - np.argmin(abs(time - start)) + 1)


def decoded_frames(gif_bytes):
    image = Image.open(io.BytesIO(gif_bytes))
    frames = [np.asarray(frame.convert("RGB"), dtype=float) for frame in ImageSequence.Iterator(image)]
    return image, frames


@pytest.mark.slow
async def test_movie_of_the_dip_shows_the_moving_source(client, mast):
    response = await client.get(MOVIE, params={"start": 1334, "end": 1335})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    image, frames = decoded_frames(response.content)
    mast.reset()
    assert len(frames) == expected_frame_count(mast, 1334, 1335) == 49
    assert image.info["loop"] == 0 and image.info["duration"] == 50
    assert 380 <= image.size[0] <= 440

    # The moving source: subtract the per-pixel median over the movie and follow the brightest residual away from
    # the target; in the emulator it moves +x (east to west in pixels) at ~40 px/day across the cutout.
    stack = np.stack([f.mean(axis=2) for f in frames])
    residual = np.abs(stack - np.median(stack, axis=0))
    height, width = residual.shape[1:]
    ys, xs = np.mgrid[0:height, 0:width]
    away = np.hypot(xs - width / 2, ys - height / 2) > width * 0.08
    positions = []
    for frame in residual[::4]:
        masked = np.where(away & (ys > height * 0.08), frame, 0)  # skip the target and the caption strip
        positions.append(np.unravel_index(np.argmax(masked), masked.shape)[1])
    # Steadily across (one sample may be lost while the source passes the masked target): a strong linear trend.
    assert np.corrcoef(np.arange(len(positions)), positions)[0, 1] > 0.9, positions
    assert positions[-1] - positions[0] > width * 0.4


async def test_second_movie_request_is_a_hit_and_304_works(client, mast):
    first = await client.get(MOVIE, params={"start": 1334, "end": 1334.5, "sector": 1})
    again = await client.get(MOVIE, params={"start": 1334, "end": 1334.5, "sector": 1})
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("MISS", "HIT")
    assert again.content == first.content
    assert "immutable" in first.headers["cache-control"]
    not_modified = await client.get(
        MOVIE, params={"start": 1334, "end": 1334.5, "sector": 1}, headers={"If-None-Match": first.headers["etag"]}
    )
    assert not_modified.status_code == 304
    assert mast.count(endpoint="tesscut.astrocut") == 1


@pytest.mark.slow
async def test_fifty_concurrent_cold_movie_requests_fetch_and_render_once(client, mast):
    mast.set_fault(ASTROCUT, delay_s=0.5)
    params = {"start": 1334.2, "end": 1334.6, "cmap": "viridis"}
    responses = await asyncio.gather(*(client.get(MOVIE, params=params) for _ in range(50)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert len({r.headers["etag"] for r in responses}) == 1
    assert mast.count(endpoint="tesscut.astrocut") == 1


@pytest.mark.slow
async def test_health_answers_while_movies_render(make_client, mast):
    async with make_client(render_threads=2) as client:
        await client.get(f"/tic/{WEIRD_TIC}/cutout", params={"sector": 1})  # cutout cached: the work is rendering
        movies = [
            asyncio.create_task(client.get(MOVIE, params={"start": 1326, "end": 1337 + i, "scale": 10}))
            for i in range(4)
        ]
        await asyncio.sleep(0.05)
        health_checks = 0
        while not all(m.done() for m in movies):
            response = await client.get("/health")
            assert response.status_code == 200
            health_checks += 1
            await asyncio.sleep(0.01)
        assert {(await m).status_code for m in movies} == {200}
    assert health_checks >= 3, "health was answered several times while the four movies rendered"


@pytest.mark.slow
async def test_cold_movie_without_waiting_gets_a_job(client, mast):
    mast.set_fault(ASTROCUT, delay_s=0.5)
    accepted = await client.get(MOVIE, params={"start": 1334, "end": 1334.3, "wait": 0})
    assert accepted.status_code == 202
    job = (await poll_job(client, accepted.headers["location"])).json()
    assert job["status"] == "done"
    assert job["result_url"].startswith(MOVIE + "?start=1334")
    result = await client.get(job["result_url"])
    assert result.status_code == 200 and result.headers["x-cache"] == "HIT"
    assert result.headers["content-type"] == "image/gif"


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"start": 1300, "end": 1301, "sector": 1}, "holds no frame of sector 1, whose frames span BTJD 1325."),
        ({"start": 1335, "end": 1334}, "start (1335.0) is after end"),
        ({"start": 1326, "end": 1353, "size": 100, "scale": 32}, "too large"),
        ({"start": 1334, "end": 1335, "cmap": "jet_custom"}, "cmap 'jet_custom' is not offered"),
        ({"start": 1334, "end": 1335, "vmin": 10, "vmax": 5}, "vmin (10.0) must be below vmax"),
        ({"start": 1334, "end": 1335, "stretch": "cubic"}, "query parameter 'stretch'"),
        ({"start": 1334, "end": 1335, "fps": 0}, "query parameter 'fps'"),
        ({"start": 1334}, "query parameter 'end'"),
    ],
)
async def test_bad_movie_requests_are_422(client, params, words):
    response = await client.get(MOVIE, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]


async def test_too_many_frames_is_422(make_client):
    async with make_client(movie_max_frames=10) as client:
        response = await client.get(MOVIE, params={"start": 1334, "end": 1335, "sector": 1})
    assert response.status_code == 422
    assert "more than the 10 allowed" in response.json()["detail"]


async def test_frame_png_is_the_nearest_frame(client):
    response = await client.get(f"/tic/{WEIRD_TIC}/frame.png", params={"time": 1334.45})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and min(image.size) >= 380


async def test_lightcurve_png_shows_the_dip(client):
    response = await client.get(
        f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve.png",
        params={"x": "time", "start": 1333.0, "end": 1336.0, "width": 900, "height": 400},
    )
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(response.content)).convert("L"), dtype=float)
    assert image.shape == (400, 900)
    # Dark (data) pixels per column: the lowest data point in each column; the dip sits mid-plot (1334.45 of
    # 1333–1336), so the lowest points there are well below those at the plot's sides.
    dark = image < 100
    rows = np.arange(image.shape[0])[:, None]
    lowest = np.where(dark, rows, -1).max(axis=0).astype(float)
    columns = np.arange(image.shape[1])
    plot_area = (columns > 150) & (columns < 850)
    middle = plot_area & (abs(columns - (150 + (1334.45 - 1333) / 3 * 700)) < 40)
    sides = plot_area & ~(abs(columns - (150 + (1334.45 - 1333) / 3 * 700)) < 120)
    assert np.median(lowest[middle]) > np.median(lowest[sides]) + 20


async def test_lightcurve_png_rejects_bad_parameters(client):
    path = f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve.png"
    assert (await client.get(path, params={"width": 10})).status_code == 422
    bad = await client.get(path, params={"highlight": "soon"})
    assert bad.status_code == 422 and "highlight" in bad.json()["detail"]


@pytest.mark.slow
async def test_mp4_when_ffmpeg_is_installed(client):
    from service.rendering.movies import MP4_AVAILABLE

    response = await client.get(MOVIE, params={"start": 1334, "end": 1334.25, "format": "mp4"})
    if not MP4_AVAILABLE:
        assert response.status_code == 422 and "imageio-ffmpeg" in response.json()["detail"]
        return
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp", "an ISO media file"


async def test_a_single_limit_beyond_the_data_is_422_not_500(client):
    response = await client.get(MOVIE, params={"start": 1334, "end": 1334.2, "sector": 1, "vmin": 1e9})
    assert response.status_code == 422
    assert "cannot be drawn" in response.json()["detail"]


async def test_too_many_frames_is_refused_before_fetching_the_cutout(make_client, mast):
    async with make_client(movie_max_frames=10) as client:
        response = await client.get(MOVIE, params={"start": 1326, "end": 1352, "size": 10, "scale": 1})
    assert response.status_code == 422
    assert "more than the 10 allowed" in response.json()["detail"]
    assert mast.count(endpoint="tesscut.astrocut") == 0


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (MOVIE, {"start": -1e308, "end": 1e308}),
        (f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve.png", {"start": -1e308, "end": 1e308, "x": "time"}),
        (f"/tic/{WEIRD_TIC}/frame.png", {"time": 1334, "vmin": -1e308, "vmax": 1e308}),
    ],
)
async def test_huge_finite_numbers_are_422_not_500(client, path, params):
    response = await client.get(path, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
