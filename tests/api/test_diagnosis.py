"""The diagnosis of a window through HTTP, against the emulator's five scenes (tests/fake_mast/verdict_scenes.py).

Each scene's pixels hold one cause: TIC 214568914's moving source (named by the emulated SkyBoT), a transiting
planet on TIC 1200000101, an eclipsing binary 3 px from TIC 1200000102 (TIC 1200000103), a glint over TIC
1200000104's CCD, momentum-dump jitter on TIC 1200000105's.
"""

import io
import math

import pytest
from PIL import Image

from tests.fake_mast.skybot import SKYBOT_PATH
from tests.fake_mast.verdict_scenes import DIAGNOSIS_SCENES

pytestmark = pytest.mark.anyio

MOVER = DIAGNOSIS_SCENES["moving_object"]
MOVER_URL = f"/tic/{MOVER.tic_id}/diagnosis?start={MOVER.start_btjd}&end={MOVER.end_btjd}"
# The emulator's mover: 40 px/day, closest (2.5 px) at BTJD 1334.45 (tests/fake_mast/scene.py).
MOVER_SPEED_PX_PER_HOUR = 40 / 24


def url_of(verdict: str, what: str = "diagnosis") -> str:
    scene = DIAGNOSIS_SCENES[verdict]
    return f"/tic/{scene.tic_id}/{what}?start={scene.start_btjd}&end={scene.end_btjd}"


@pytest.mark.parametrize("verdict", sorted(DIAGNOSIS_SCENES))
async def test_each_scene_gets_its_verdict_and_pictures(client, verdict):
    response = await client.get(url_of(verdict))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] == verdict, body["explanation"]
    assert 0 < body["confidence"] <= 1 and body["explanation"].endswith(".")
    assert response.headers["etag"]
    for link, size in (("picture", (1200, 450)), ("pixels", None)):
        picture = await client.get(body["links"][link])
        assert picture.status_code == 200, picture.text
        assert picture.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(picture.content))
        assert size is None or image.size == size
        assert len(image.convert("L").getcolors(maxcolors=65536) or ()) > 20  # drawn, not blank


async def test_the_moving_source_is_tracked_and_named(client):
    body = (await client.get(MOVER_URL)).json()
    track = body["moving_source"]
    assert track["crosses"] == "aperture"
    assert track["closest_approach_btjd"] == pytest.approx(1334.45, abs=0.1)
    assert track["closest_approach_px"] == pytest.approx(2.5, abs=0.5)
    assert track["speed_px_per_hour"] == pytest.approx(MOVER_SPEED_PX_PER_HOUR, rel=0.15)
    assert track["speed_arcsec_per_hour"] == pytest.approx(21 * track["speed_px_per_hour"], rel=0.02)
    assert 0 <= track["position_angle_deg"] < 360
    times = [point["btjd"] for point in track["points"]]
    assert len(times) >= 5 and times == sorted(times)
    assert all(1333.8 <= t <= 1335.1 for t in times)

    known = body["known_objects"]
    assert known["status"] == "ok" and known["detail"] is None
    assert known["epoch_btjd"] == pytest.approx((MOVER.start_btjd + MOVER.end_btjd) / 2)
    (body_known,) = known["objects"]
    assert (body_known["number"], body_known["name"], body_known["class"]) == (90917, "2002 TV318", "MB>Middle")
    assert body_known["matches_track"] is True
    assert "(90917) 2002 TV318" in body["explanation"]
    # Predicted where the track was at its closest approach, moving as fast.
    closest = min(track["points"], key=lambda p: abs(p["btjd"] - track["closest_approach_btjd"]))
    predicted = body_known["predicted_px"]
    assert math.hypot(predicted["column"] - closest["column"], predicted["row"] - closest["row"]) < 3
    rate = body_known["rate_px_per_hour"]
    assert math.hypot(rate["column"], rate["row"]) == pytest.approx(MOVER_SPEED_PX_PER_HOUR, rel=0.15)


async def test_the_evidence_fields(client):
    on_target = (await client.get(url_of("on_target"))).json()
    event = on_target["event"]
    assert event["in_event"]["n_frames"] >= 3 and event["aperture_pixels"] > 0
    before, after = event["reference_before"], event["reference_after"]
    assert before["last_btjd"] < on_target["start_btjd"] <= event["in_event"]["first_btjd"]
    assert event["in_event"]["last_btjd"] <= on_target["end_btjd"] < after["first_btjd"]
    # The planet's 8000 ppm, diluted by the aperture's other light, measured significantly.
    assert 4000 < event["depth_ppm"] < 8500 and event["depth_snr"] > 10
    assert event["depth_ppm"] / event["depth_err_ppm"] == pytest.approx(event["depth_snr"], rel=0.01)
    difference = on_target["difference_image"]
    assert math.hypot(difference["offset_px"]["column"], difference["offset_px"]["row"]) < 0.5
    assert difference["offset_arcsec"] < 10 and difference["snr"] > 6
    assert difference["nearest_star"]["tic_id"] == DIAGNOSIS_SCENES["on_target"].tic_id
    assert on_target["moving_source"] is None and on_target["quality"]["flags"] == 0

    off_target = (await client.get(url_of("off_target"))).json()["difference_image"]
    assert off_target["nearest_star"]["tic_id"] == 1200000103  # the eclipsing binary, named from the TIC
    assert off_target["nearest_star"]["tmag"] == pytest.approx(14.0)
    assert off_target["offset_sigma"] > 3 and 2 < off_target["offset_arcsec"] / 21 < 4

    glint = (await client.get(url_of("scattered_light"))).json()["background"]
    assert glint["departs"] and glint["ramp"] and glint["departure_sigma"] > 5
    assert glint["level_e_per_s"] > glint["reference_level_e_per_s"]

    dumps = (await client.get(url_of("systematics"))).json()
    assert dumps["quality"]["flags"] & 32 and "momentum dump" in dumps["quality"]["names"]
    assert dumps["quality"]["flagged_frames"] >= 1 and dumps["event"]["flagged_excluded"] >= 1


async def test_skybot_failing_leaves_the_diagnosis_standing_and_is_not_kept(client, mast):
    mast.set_fault(SKYBOT_PATH, status=503)
    down = await client.get(MOVER_URL)
    assert down.status_code == 200, down.text
    body = down.json()
    assert body["verdict"] == "moving_object"  # the pixels alone say so
    assert body["known_objects"]["status"] == "unavailable" and body["known_objects"]["objects"] == []
    assert "SkyBoT" in body["known_objects"]["detail"] or "503" in body["known_objects"]["detail"]
    assert "2002 TV318" not in body["explanation"]

    mast.clear_faults()
    back = (await client.get(MOVER_URL)).json()
    assert back["known_objects"]["status"] == "ok" and back["known_objects"]["objects"][0]["matches_track"]


async def test_skybot_sending_garbage_is_unavailable_too(client, mast):
    mast.set_fault(SKYBOT_PATH, body="html")
    body = (await client.get(MOVER_URL)).json()
    assert body["known_objects"]["status"] == "unavailable" and body["known_objects"]["detail"]


async def test_a_position_is_diagnosed_like_its_tic(client):
    scene = DIAGNOSIS_SCENES["off_target"]
    response = await client.get(
        "/diagnosis",
        params={"ra": scene.ra_deg, "dec": scene.dec_deg, "start": scene.start_btjd, "end": scene.end_btjd},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tic_id"] is None and body["verdict"] == "off_target"
    assert body["links"]["picture"].startswith("/diagnosis.png?ra=")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("start=1334&end=1337", "more than the 2 days"),
        ("start=1335&end=1334", "after end"),
        ("start=1334&end=1334", "length"),
        ("start=1334", "end"),
        ("start=1334&end=nan", "end"),
        ("start=1400&end=1401&sector=1", "no frame"),
        ("start=1334&end=1335&size=200", "size"),
    ],
)
async def test_bad_input_is_a_422_problem(client, query, words):
    response = await client.get(f"/tic/{MOVER.tic_id}/diagnosis?{query}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.text


async def test_the_pixels_radius_is_bounded(client):
    base = url_of("on_target", "pixels.png")
    small = await client.get(f"{base}&radius=1")
    large = await client.get(f"{base}&radius=5")
    assert small.status_code == large.status_code == 200
    assert Image.open(io.BytesIO(small.content)).size < Image.open(io.BytesIO(large.content)).size
    refused = await client.get(f"{base}&radius=6")
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
