"""Windows reaching past a sector's first or last frame, through HTTP: cut to the frames there are, and said so.

A box drawn on a light curve easily reaches past the sector's ends; the answer shows the frames that exist and says
the window was cut (the movie's ``TESS-Window`` header, the diagnosis's ``clamped``). Only a window holding no
frame of the sector is refused (422), naming the sector's span.
"""

import functools
import io
import zipfile

import httpx
import numpy as np
import pytest
from astropy.io import fits

from tests.conftest import WEIRD_TIC

pytestmark = pytest.mark.anyio

MOVIE = f"/tic/{WEIRD_TIC}/movie"
DIAGNOSIS = f"/tic/{WEIRD_TIC}/diagnosis"
# scale=1: the frames' own 50×50 pixels, so a whole sector is quick to draw.
SMALL = {"sector": 1, "scale": 1}


@functools.cache
def sector_times(mast_url):
    """The emulator's frame times of TIC 214568914's sector-1 cutout, as the service reads them."""
    params = {"ra": 340.8004, "dec": -36.3439, "x": 50, "y": 50, "units": "px", "sector": 1}
    response = httpx.get(f"{mast_url}/tesscut/api/v0.1/astrocut", params=params, timeout=60)
    with (
        zipfile.ZipFile(io.BytesIO(response.content)) as archive,
        fits.open(io.BytesIO(archive.read(archive.namelist()[0]))) as hdus,
    ):
        return np.asarray(hdus["PIXELS"].data["TIME"], dtype=float)


def window_header(response):
    """Return the TESS-Window header as a dict."""
    fields = (item.strip().split("=", 1) for item in response.headers["tess-window"].split(";"))
    return dict(fields)


def nearest(times, btjd):
    return int(np.argmin(np.abs(times - btjd)))


@pytest.mark.parametrize(
    ("start", "end", "clamped"),
    [(1325.3, 1326.0, "start"), (1352.5, 1353.5, "end"), (1325.3, 1353.2, "both"), (1300.0, 1360.0, "both")],
)
async def test_a_movie_reaching_past_the_sector_shows_the_frames_there_are(make_client, mast, start, end, clamped):
    times = sector_times(mast.url)
    first, last = float(np.nanmin(times)), float(np.nanmax(times))
    # The frame limit counts the frames of the cut window: 60 days would be ~2,900 frames, the sector has 1,282
    # (estimated at ~1,400 before the cutout is read, from the sector's approximate span).
    async with make_client(movie_max_frames=1500) as client:
        response = await client.get(MOVIE, params={"start": start, "end": end, **SMALL})
    assert response.status_code == 200, response.text
    header = window_header(response)
    shown = times[nearest(times, max(start, first)) : nearest(times, min(end, last)) + 1]
    assert header["clamped"] == clamped
    assert int(header["frames"]) == len(shown)
    assert float(header["start"]) == pytest.approx(shown[0], abs=1e-5)
    assert float(header["end"]) == pytest.approx(shown[-1], abs=1e-5)
    assert (float(header["requested-start"]), float(header["requested-end"])) == (start, end)
    if clamped in ("start", "both"):
        assert float(header["start"]) == pytest.approx(first, abs=1e-5)
    if clamped in ("end", "both"):
        assert float(header["end"]) == pytest.approx(last, abs=1e-5)


async def test_the_tutorials_whole_sector_window_is_every_frame(client, mast):
    """The request of the issue: it misses the first frame by 0.03 d and the last by 0.04 d."""
    response = await client.get(MOVIE, params={"start": 1325.3, "end": 1353.2, "format": "mp4", **SMALL})
    assert response.status_code == 200, response.text
    header = window_header(response)
    assert header["clamped"] == "both" and int(header["frames"]) == len(sector_times(mast.url)) == 1282
    again = await client.get(MOVIE, params={"start": 1325.3, "end": 1353.2, "format": "mp4", **SMALL})
    assert again.headers["x-cache"] == "HIT" and again.headers["tess-window"] == response.headers["tess-window"]


async def test_a_movie_inside_the_sector_says_it_was_not_cut(client, mast):
    response = await client.get(MOVIE, params={"start": 1334.0, "end": 1334.5, **SMALL})
    assert response.status_code == 200
    header = window_header(response)
    times = sector_times(mast.url)
    assert header["clamped"] == "none"
    assert int(header["frames"]) == nearest(times, 1334.5) - nearest(times, 1334.0) + 1


@pytest.mark.parametrize(
    ("path", "start", "end"),
    [(MOVIE, 1300.0, 1310.0), (MOVIE, 1360.0, 1361.0), (DIAGNOSIS, 1320.0, 1321.0), (DIAGNOSIS, 1354.0, 1355.0)],
)
async def test_a_window_with_no_frame_of_the_sector_is_422(client, path, start, end):
    response = await client.get(path, params={"start": start, "end": end, "sector": 1})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert "holds no frame of sector 1, whose frames span BTJD 1325.3285–1353.1621" in problem["detail"]
    assert problem["sector"] == 1
    assert problem["sector_start_btjd"] == pytest.approx(1325.3285, abs=1e-4)


@pytest.mark.parametrize(("start", "end", "clamped"), [(1325.0, 1326.0, "start"), (1352.6, 1353.6, "end")])
async def test_a_diagnosis_reaching_past_the_sector_is_cut_and_says_so(client, mast, start, end, clamped):
    times = sector_times(mast.url)
    first, last = float(np.nanmin(times)), float(np.nanmax(times))
    response = await client.get(DIAGNOSIS, params={"start": start, "end": end, "sector": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["clamped"] == clamped
    assert (body["requested_start_btjd"], body["requested_end_btjd"]) == (start, end)
    assert body["start_btjd"] == (pytest.approx(first) if clamped == "start" else start)
    assert body["end_btjd"] == (pytest.approx(last) if clamped == "end" else end)
    in_event = body["event"]["in_event"]
    assert body["start_btjd"] - 1e-5 <= in_event["first_btjd"] <= in_event["last_btjd"] <= body["end_btjd"] + 1e-5
    # The links name the window as requested (the client's own requests for them hit the same cache entries), and
    # their products cut it alike.
    movie = await client.get(body["links"]["movie"] + "&scale=1")
    assert movie.status_code == 200 and window_header(movie)["clamped"] == clamped
    for link in ("picture", "pixels"):
        picture = await client.get(body["links"][link])
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"


async def test_a_diagnosis_inside_the_sector_is_not_cut(client):
    body = (await client.get(DIAGNOSIS, params={"start": 1334.0, "end": 1335.0})).json()
    assert body["clamped"] is None
    assert (body["start_btjd"], body["end_btjd"]) == (body["requested_start_btjd"], body["requested_end_btjd"])
