"""The edge tier in the app: a cacheable answer asked again is served from memory before routing, counted by
route, with an Age; answers that must not be kept are not."""

import pytest
from prometheus_client import REGISTRY

pytestmark = pytest.mark.anyio

TIC = 214568914


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_cacheable_answer_asked_again_comes_from_the_edge(client, mast):
    path = f"/tic/{TIC}/tces"
    first = await client.get(path)
    hits = sample("tess_edge_tier_total", event="hit")
    requests = sample("tess_http_requests_total", route="/tic/{tic_id}/tces", method="GET", status="200")
    again = await client.get(path)
    assert sample("tess_edge_tier_total", event="hit") == hits + 1
    # Counted under its route like any answer, with its own request id.
    assert sample("tess_http_requests_total", route="/tic/{tic_id}/tces", method="GET", status="200") == requests + 1
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert again.headers["x-cache"] == "HIT" and "age" in again.headers
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert mast.count(endpoint="exomast.tces") == 1
    not_modified = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.headers["etag"] == first.headers["etag"]


async def test_problems_are_never_kept(client, mast):
    mast.set_fault("/api/v0.1/dvdata/tess/*/tces/", status=503)
    assert (await client.get(f"/tic/{TIC}/tces")).status_code == 503
    mast.clear_faults()
    assert (await client.get(f"/tic/{TIC}/tces")).status_code == 200
