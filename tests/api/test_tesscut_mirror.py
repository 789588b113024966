"""The TESScut mirror: unmodified astroquery runs against the service, the mirror and `/cutout` share one cache,
and the answers are TESScut's (the emulator's), errors included."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from astropy.io import fits

from service.infra.cache import CachedBody, EntryMeta
from service.infra.threads import Limiters
from service.services.cutouts import CutoutFile
from service.services.tesscut_mirror import MirrorZip, stored_zip_size

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/tesscut/api/v0.1"
ASTROCUT = f"{PREFIX}/astrocut"
SECTOR = f"{PREFIX}/sector"
SAMPLE = {"ra": 107.27, "dec": -70.0}  # the real 2018 zip
WEIRD = {"ra": 340.8004, "dec": -36.3439}  # TIC 214568914
TWO_CCDS = {"ra": 330.944, "dec": -30.9879}  # a 25-px cutout reaches camera 1 CCDs 2 and 3
WASP18 = {"ra": 24.354314, "dec": -45.677896}  # sectors 1, 2 and 3
NORTH = {"ra": 10.0, "dec": 40.0}  # on no detector
FORM_HEADERS = {"Accept": "application/json"}  # what astroquery sends with its POSTs


def astrocut_counts(mast) -> tuple[int, int]:
    return mast.count(endpoint="tesscut.astrocut"), mast.count(endpoint="tesscut.sector")


def members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


async def emulator_zip(mast, params) -> dict[str, bytes]:
    """What TESScut itself (the emulator) answers: the reference for the mirror's zips."""
    async with httpx.AsyncClient(base_url=mast.url, timeout=60) as upstream:
        response = await upstream.get(ASTROCUT, params=params)
    assert response.headers["content-type"] == "application/zip"
    return members(response.content)


# --- unmodified astroquery against a running service -------------------------------------------------------------

ASTROQUERY_SCRIPT = r'''
"""Plain astroquery Tesscut calls; prints what they returned as JSON. argv: expected server, download dir."""
import hashlib, json, sys
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits

from service.infra.cache import CachedBody, EntryMeta
from service.infra.threads import Limiters
from service.services.cutouts import CutoutFile
from service.services.tesscut_mirror import MirrorZip, stored_zip_size
from astroquery.mast import Tesscut, conf

expected_server, download_dir = sys.argv[1], Path(sys.argv[2])
assert conf.server == expected_server, f"astroquery.cfg was not read: conf.server is {conf.server}"
assert Tesscut._service_api_connection.REQUEST_URL == expected_server + "/tesscut/api/v0.1/"


def digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def describe(hdus):
    return {
        "shape": list(hdus["APERTURE"].data.shape),
        "rows": len(hdus["PIXELS"].data),
        "flux": digest(hdus["PIXELS"].data["FLUX"]),
        "time": digest(hdus["PIXELS"].data["TIME"]),
        "aperture": digest(hdus["APERTURE"].data),
    }


out = {}
for label, ra, dec in (("sample", 107.27, -70.0), ("weird", 340.8004, -36.3439)):
    coordinates = SkyCoord(ra, dec, unit="deg")
    sectors = Tesscut.get_sectors(coordinates=coordinates)
    cutouts = Tesscut.get_cutouts(coordinates=coordinates, size=5, sector=1)
    paths = Tesscut.download_cutouts(coordinates=coordinates, size=5, sector=1, path=str(download_dir / label))
    downloaded = {}
    for path in paths["Local Path"]:
        with fits.open(path) as hdus:
            downloaded[Path(path).name] = {"sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
                                           **describe(hdus)}
    out[label] = {
        "sectors": [[str(row["sectorName"]), int(row["sector"]), int(row["camera"]), int(row["ccd"])]
                    for row in sectors],
        "cutouts": [{"name": hdus.filename, **describe(hdus)} for hdus in cutouts],
        "downloaded": downloaded,
    }
print(json.dumps(out))
'''


@pytest.fixture
def service_url(running_service: str) -> str:
    """The base URL of a running service (astroquery's [mast] server)."""
    return running_service


def run_astroquery(server: str, workdir: Path) -> dict:
    """Run the script in a fresh Python whose only astropy configuration is ``[mast] server = <server>``."""
    workdir.mkdir(parents=True)
    config_home = workdir / "xdg-config"
    # astropy >= 8 reads $XDG_CONFIG_HOME/astropy/astroquery.cfg, older ones $XDG_CONFIG_HOME/astropy/config/...
    # (both only when $XDG_CONFIG_HOME/astropy exists); the script checks which server astroquery ended up with.
    for directory in (config_home / "astropy", config_home / "astropy" / "config"):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "astroquery.cfg").write_text(f"[mast]\nserver = {server}\n")
    script = workdir / "tesscut_client.py"
    script.write_text(ASTROQUERY_SCRIPT)
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(config_home),
        "XDG_CACHE_HOME": str(workdir / "xdg-cache"),
        "ASTROPY_CONFIG_DIR": "",
    }
    done = subprocess.run(
        [sys.executable, str(script), server, str(workdir / "downloads")],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_unmodified_astroquery_gets_tesscuts_answers_from_the_service(mast, service_url, tmp_path):
    upstream = run_astroquery(mast.url, tmp_path / "upstream")
    before = astrocut_counts(mast)
    mirrored = run_astroquery(service_url, tmp_path / "mirror")
    assert mirrored == upstream
    assert upstream["sample"]["sectors"] == [["tess-s0001-4-3", 1, 4, 3]]
    assert ["tess-s0001-1-2", 1, 1, 2] in upstream["weird"]["sectors"]
    assert list(upstream["sample"]["downloaded"]) == ["tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits"]
    assert upstream["weird"]["cutouts"][0]["shape"] == [5, 5]
    # One sector lookup and one cutout per position; get_cutouts and download_cutouts share the cutout.
    after = astrocut_counts(mast)
    # Per position: one astrocut call; one sector lookup at the point (get_sectors) and one over the cutout's area
    # (TESScut cuts every CCD the area reaches), shared by get_cutouts and download_cutouts.
    assert (after[0] - before[0], after[1] - before[1]) == (2, 4)

    assert run_astroquery(service_url, tmp_path / "again") == upstream
    assert astrocut_counts(mast) == after, "repeated calls are answered from the cache"


# --- the wire format ------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_get_and_post_give_the_same_answers(client, mast):
    form = {"ra": WEIRD["ra"], "dec": WEIRD["dec"], "radius": 0.0, "product": "SPOC"}  # product: ignored
    posted = await client.post(SECTOR, data=form, headers=FORM_HEADERS)
    got = await client.get(SECTOR, params=form)
    assert posted.status_code == got.status_code == 200
    assert posted.json() == got.json()
    assert {"sectorName": "tess-s0001-1-2", "sector": "0001", "camera": "1", "ccd": "2"} in got.json()["results"]

    cutout = {"x": 5, "y": 5, "units": "px", "sector": 1, **WEIRD}
    zipped = await client.post(ASTROCUT, data=cutout, headers=FORM_HEADERS)
    assert zipped.status_code == 200, "Accept: application/json on a zip request is tolerated"
    assert zipped.headers["content-type"] == "application/zip"
    assert int(zipped.headers["content-length"]) == len(zipped.content)
    assert zipped.headers["x-cache"] == "MISS"
    again = await client.get(ASTROCUT, params=cutout)
    assert again.headers["x-cache"] == "HIT"
    assert again.content == zipped.content
    assert members(zipped.content) == await emulator_zip(mast, cutout)
    # Query and form together: the form wins.
    mixed = await client.post(f"{ASTROCUT}?ra=1&dec=1&sector=1", data=cutout, headers=FORM_HEADERS)
    assert mixed.content == zipped.content
    assert mast.count(endpoint="tesscut.astrocut") == 2, "one for the service, one for the reference"


@pytest.mark.anyio
async def test_conditional_and_head_requests(client):
    cutout = {"x": 5, "y": 5, "sector": 1, **SAMPLE}
    first = await client.get(ASTROCUT, params=cutout)
    assert "immutable" in first.headers["cache-control"]
    etag = first.headers["etag"]
    again = await client.get(ASTROCUT, params=cutout, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    head = await client.head(ASTROCUT, params=cutout)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(first.content))
    assert head.headers["etag"] == etag


@pytest.mark.anyio
@pytest.mark.parametrize(
    "params",
    [
        pytest.param(NORTH, id="on-no-detector"),
        pytest.param({**SAMPLE, "sector": 2}, id="sector-that-did-not-observe"),
    ],
)
async def test_no_data_is_a_200_with_a_msg(client, mast, params):
    response = await client.post(ASTROCUT, data={"x": 5, "y": 5, **params}, headers=FORM_HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"msg": "Cutout Error: No FFIs found for input target. Cutout not performed."}
    assert mast.count(endpoint="tesscut.astrocut") == 0
    empty = await client.get(SECTOR, params=NORTH)
    assert empty.json() == {"results": []}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "params", "words"),
    [
        (ASTROCUT, {**WEIRD, "x": 101, "y": 100}, "exceeds the maximum of 10,000 pixels"),
        (ASTROCUT, {**WEIRD, "x": 0.6, "y": 0.6, "units": "d"}, "exceeds the maximum of 10,000 pixels"),
        (ASTROCUT, {**WEIRD, "units": "furlong"}, "Invalid units"),
        (ASTROCUT, {**WEIRD, "x": -5}, "must be positive"),
        (ASTROCUT, {**WEIRD, "sector": "one"}, "Invalid sector"),
        (ASTROCUT, {"ra": "abc", "dec": 1}, "Invalid ra"),
        (ASTROCUT, {"ra": 1}, "Missing required parameter: dec"),
        (ASTROCUT, {"ra": 1, "dec": 91}, "Invalid dec"),
        (SECTOR, {**WEIRD, "radius": "3furlong"}, "Invalid radius unit"),
        (SECTOR, {**WEIRD, "radius": "nan"}, "Invalid radius"),
    ],
)
async def test_bad_input_is_a_400_with_a_msg(client, mast, path, params, words):
    for response in (await client.get(path, params=params), await client.post(path, data=params)):
        assert response.status_code == 400
        body = response.json()
        assert words in body["msg"] and body["detail"] == body["msg"]
        assert response.headers["content-type"] == "application/problem+json"
    assert astrocut_counts(mast) == (0, 0)


@pytest.mark.anyio
async def test_post_bodies_are_bounded(client, mast):
    padding = "x" * (16 * 1024)
    declared = await client.post(SECTOR, content=f"ra=1&dec=1&pad={padding}", headers=FORM_HEADERS)
    assert declared.status_code == 413
    assert "larger than 16384 bytes" in declared.json()["msg"]

    async def chunked():
        yield b"ra=1&dec=1&pad="
        for _ in range(20):
            yield b"x" * 1024

    streamed = await client.post(
        SECTOR, content=chunked(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert streamed.status_code == 413
    assert astrocut_counts(mast) == (0, 0)


@pytest.mark.anyio
@pytest.mark.parametrize("what", ["sector", "astrocut"])
async def test_moving_targets_are_not_supported_yet(client, what):
    path = f"{PREFIX}/moving_target/{what}"
    for response in (
        await client.get(path, params={"obj_id": "Eleonora"}),
        await client.post(path, data={"obj_id": "Eleonora", "obj_type": "small_body"}, headers=FORM_HEADERS),
    ):
        assert response.status_code == 501
        assert response.headers["content-type"] == "application/problem+json"
        assert "not supported" in response.json()["msg"]


@pytest.mark.anyio
async def test_tesscut_overload_stays_a_503(make_client, mast):
    mast.set_fault(f"{PREFIX}/astrocut", status=503)
    async with make_client(tesscut_max_attempts=1) as client:
        response = await client.post(ASTROCUT, data={"sector": 1, **SAMPLE}, headers=FORM_HEADERS)
    assert response.status_code == 503
    assert "TESScut is overloaded" in response.json()["detail"]


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_cutout_slower_than_the_deadline_is_a_504_and_goes_on_in_the_background(make_client, mast):
    mast.set_fault(f"{PREFIX}/astrocut", delay_s=1.0)
    async with make_client(tesscut_mirror_wait_s=0.3) as client:
        response = await client.get(ASTROCUT, params={"sector": 1, **SAMPLE})
        assert response.status_code == 504
        assert "goes on in the background" in response.json()["detail"]
        later = await client.get("/cutout", params={**SAMPLE, "size": 5, "sector": 1, "wait": 10})
        assert later.status_code == 200
    assert mast.count(endpoint="tesscut.astrocut") == 1


@pytest.mark.anyio
async def test_the_streamed_zip_has_the_announced_length():
    def body(payload: bytes, in_memory: bool) -> CachedBody:
        meta = EntryMeta("application/fits", '"x"', 1.7e9, 1.8e9, len(payload))
        return CachedBody(meta, data=payload) if in_memory else CachedBody(meta, file=io.BytesIO(payload))

    payloads = {"tess-s0001-1-2_a.fits": b"a" * 3_000_001, "tess-s0001-1-3_b.fits": b"b" * 10, "empty.fits": b""}
    files = [CutoutFile(name, body(data, i % 2 == 1)) for i, (name, data) in enumerate(payloads.items())]
    archive = MirrorZip(files, hit=True, immutable=True)
    limiters = Limiters.create(cpu_threads=1, io_threads=1)
    streamed = b"".join([chunk async for chunk in archive.stream(limiters)])
    assert len(streamed) == archive.size_bytes
    assert members(streamed) == payloads
    # A client that goes away mid-stream: every file is closed all the same.
    files = [CutoutFile(name, body(data, False)) for name, data in payloads.items()]
    interrupted = MirrorZip(files, hit=True, immutable=True).stream(limiters)
    assert (await anext(interrupted)).startswith(b"PK")
    await interrupted.aclose()
    assert all(file.body.file.closed for file in files)
    # Past 2 GiB zipfile adds ZIP64 records: the zip is then sent without a length.
    assert stored_zip_size([("a.fits", 2**31 - 100)]) is None
    assert stored_zip_size([("a.fits", 2**30)] * 2) is None


# --- one cache with /cutout ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cutout_then_mirror_is_a_hit(client, mast):
    clean = await client.get("/cutout", params={**SAMPLE, "size": 5, "sector": 1})
    assert clean.headers["x-cache"] == "MISS"
    mirrored = await client.post(ASTROCUT, data={"x": 5, "y": 5, "sector": 1, **SAMPLE}, headers=FORM_HEADERS)
    assert mirrored.headers["x-cache"] == "HIT"
    assert list(members(mirrored.content).values()) == [clean.content]
    # An angular size of 5 pixels (105") is the same cutout.
    angular = await client.get(ASTROCUT, params={"x": 105 / 3600, "y": 105 / 3600, "units": "d", "sector": 1, **SAMPLE})
    assert angular.headers["x-cache"] == "HIT" and angular.content == mirrored.content
    assert astrocut_counts(mast) == (1, 1)


@pytest.mark.anyio
async def test_mirror_then_cutout_is_a_hit(client, mast):
    mirrored = await client.get(ASTROCUT, params={"x": 10, "y": 10, "sector": 1, **WEIRD})
    assert mirrored.headers["x-cache"] == "MISS"
    clean = await client.get("/cutout", params={**WEIRD, "size": 10, "sector": 1})
    assert clean.headers["x-cache"] == "HIT"
    assert list(members(mirrored.content).values()) == [clean.content]
    latest = await client.get("/cutout", params={**WEIRD, "size": 10})  # sector 1 is the latest that observed it
    assert latest.headers["x-cache"] == "HIT"
    assert astrocut_counts(mast) == (1, 1)


@pytest.mark.anyio
async def test_two_ccds_come_back_as_two_files_like_tesscuts_zip(client, mast):
    """/cutout serves the CCD with the target; the mirror serves both files TESScut returned, from one download."""
    cutout = {"x": 25, "y": 25, "sector": 1, **TWO_CCDS}
    clean = await client.get("/cutout", params={**TWO_CCDS, "size": 25, "sector": 1})
    assert "tess-s0001-1-2" in clean.headers["x-cutout-note"]
    mirrored = await client.post(ASTROCUT, data=cutout, headers=FORM_HEADERS)
    assert mirrored.headers["x-cache"] == "HIT"
    assert int(mirrored.headers["content-length"]) == len(mirrored.content) > 2 * len(clean.content) - 1
    assert astrocut_counts(mast)[0] == 1
    files = members(mirrored.content)
    assert list(files) == [
        "tess-s0001-1-2_330.9440000_-30.9879000_25-x-25_astrocut.fits",
        "tess-s0001-1-3_330.9440000_-30.9879000_25-x-25_astrocut.fits",
    ]
    assert files == await emulator_zip(mast, cutout)
    with_target = files["tess-s0001-1-3_330.9440000_-30.9879000_25-x-25_astrocut.fits"]
    assert with_target == clean.content
    with fits.open(io.BytesIO(with_target)) as hdus:
        assert hdus["APERTURE"].data[12, 12] == 1


@pytest.mark.slow
@pytest.mark.anyio
async def test_every_sector_is_fetched_and_cached_on_its_own(client, mast):
    cutout = {"x": 7, "y": 5, **WASP18}  # no sector: 1, 2 and 3; a rectangle, 5 rows by 7 columns
    first = await client.get(ASTROCUT, params=cutout)
    assert first.headers["x-cache"] == "MISS"
    assert "immutable" not in first.headers["cache-control"], "a new sector would change the answer"
    assert mast.count(endpoint="tesscut.astrocut") == 3, "one TESScut request per sector"
    files = members(first.content)
    assert [name.split("_")[0] for name in files] == ["tess-s0001-2-2", "tess-s0002-2-2", "tess-s0003-2-1"]
    assert files == await emulator_zip(mast, cutout)
    for content in files.values():
        with fits.open(io.BytesIO(content)) as hdus:
            assert hdus["APERTURE"].data.shape == (5, 7)

    one = await client.post(ASTROCUT, data={**cutout, "sector": 2}, headers=FORM_HEADERS)
    assert one.headers["x-cache"] == "HIT"
    assert list(members(one.content).values()) == [files[list(files)[1]]]
    square = await client.get(ASTROCUT, params={**cutout, "x": 5, "sector": 2})
    assert square.headers["x-cache"] == "MISS", "a rectangle is not shared with a square"
    assert mast.count(endpoint="tesscut.astrocut") == 3 + 1 + 1  # sectors 1-3, the reference zip, the square


@pytest.mark.parametrize("params", [{"x": "1e308", "y": "1e308", "units": "d"}, {"x": "1e308", "y": "2", "units": "m"}])
@pytest.mark.anyio
async def test_huge_angular_sizes_are_400_not_500(client, params):
    response = await client.get(ASTROCUT, params={"ra": 340.8004, "dec": -36.3439, **params})
    assert response.status_code == 400
    assert "exceeds the maximum" in response.json()["msg"]


@pytest.mark.anyio
async def test_cutout_area_reaching_two_ccds_gets_both_like_tesscut(client, mast):
    """Centre off-detector, but a 21-px cutout reaches CCDs 2 and 3 of sector 1: TESScut cuts both."""
    params = {"ra": 327.944, "dec": -32.0879, "x": 21, "y": 21, "sector": 1}
    ours = await client.get(ASTROCUT, params=params)
    theirs = httpx.get(mast.url + "/tesscut/api/v0.1/astrocut", params=params, timeout=60)
    assert theirs.headers["content-type"] == "application/zip"
    assert ours.status_code == 200 and ours.headers["content-type"] == "application/zip"
    names = lambda body: sorted(zipfile.ZipFile(io.BytesIO(body)).namelist())  # noqa: E731
    assert names(ours.content) == names(theirs.content)


@pytest.mark.anyio
async def test_sector_radius_is_honoured(client, mast):
    params = {"ra": 327.944, "dec": -32.0879, "radius": 0.5}
    ours = (await client.get("/tesscut/api/v0.1/sector", params=params)).json()
    theirs = httpx.get(mast.url + "/tesscut/api/v0.1/sector", params=params).json()
    assert ours == theirs and ours["results"]
