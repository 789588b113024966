"""Single byte ranges on cached answers, through HTTP on real movies: what a browser's <video> needs to seek."""

import pytest

from service.infra.cache import READ_WHOLE_MAX_BYTES
from tests.conftest import WEIRD_TIC

pytestmark = pytest.mark.anyio

MOVIE = f"/tic/{WEIRD_TIC}/movie"
# A day of frames as a GIF: several MB, so it is served from its file in the cache, not from memory.
BIG = {"start": 1334, "end": 1335, "sector": 1}
# Six hours as MP4: tens of kB, served from memory.
SMALL_MP4 = {"start": 1334, "end": 1334.25, "sector": 1, "format": "mp4"}


async def test_one_range_of_a_movie_streamed_from_its_file_is_those_bytes(client):
    whole = await client.get(MOVIE, params=BIG)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    body, size, etag = whole.content, len(whole.content), whole.headers["etag"]
    assert size > READ_WHOLE_MAX_BYTES, "big enough to be streamed from the cache's file"
    for asked, (first, last) in {
        "bytes=0-99": (0, 99),
        "bytes=1000000-": (1_000_000, size - 1),
        "bytes=-500": (size - 500, size - 1),
        "bytes=0-": (0, size - 1),  # what a browser asks first
        f"bytes={size - 10}-{size + 10_000}": (size - 10, size - 1),  # cut at the end
        f"bytes=-{size + 1}": (0, size - 1),
        "BYTES = 5-5": (5, 5),
    }.items():
        part = await client.get(MOVIE, params=BIG, headers={"Range": asked})
        assert part.status_code == 206, asked
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}", asked
        assert int(part.headers["content-length"]) == last - first + 1, asked
        assert part.content == body[first : last + 1], asked
        assert part.headers["etag"] == etag and part.headers["content-type"] == "image/gif"
        assert part.headers["x-cache"] == "HIT" and "immutable" in part.headers["cache-control"]


async def test_a_browser_can_seek_an_mp4(client):
    whole = await client.get(MOVIE, params=SMALL_MP4)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    size = len(whole.content)
    head = await client.get(MOVIE, params=SMALL_MP4, headers={"Range": "bytes=0-1023"})
    tail = await client.get(MOVIE, params=SMALL_MP4, headers={"Range": "bytes=1024-"})
    assert (head.status_code, tail.status_code) == (206, 206)
    assert head.headers["content-type"] == tail.headers["content-type"] == "video/mp4"
    assert head.content + tail.content == whole.content
    assert tail.headers["content-range"] == f"bytes 1024-{size - 1}/{size}"


async def test_ranges_that_cannot_be_served_as_asked(client):
    whole = await client.get(MOVIE, params=SMALL_MP4)
    size, etag = len(whole.content), whole.headers["etag"]

    async def get(**headers):
        return await client.get(MOVIE, params=SMALL_MP4, headers=headers)

    for asked in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0", f"bytes={'9' * 40}-"):
        refused = await get(Range=asked)
        assert refused.status_code == 416, asked
        assert refused.headers["content-range"] == f"bytes */{size}"
        assert refused.headers["content-type"] == "application/problem+json"
        assert str(size) in refused.json()["detail"]
    # Answered whole (200), as RFC 9110 allows: several ranges, another unit, nonsense, a backwards range, and
    # an If-Range that is not this answer's strong ETag (another tag, a weak one, a date).
    for headers in (
        {"Range": "bytes=0-1,5-6"},
        {"Range": "items=0-1"},
        {"Range": "bytes=abc"},
        {"Range": "bytes=9-5"},
        {"Range": "bytes=0-1", "If-Range": '"another"'},
        {"Range": "bytes=0-1", "If-Range": f"W/{etag}"},
        {"Range": "bytes=0-1", "If-Range": "Wed, 21 Oct 2015 07:28:00 GMT"},
    ):
        answer = await get(**headers)
        assert answer.status_code == 200, headers
        assert answer.content == whole.content
    matching = await get(Range="bytes=0-1", **{"If-Range": etag})
    assert matching.status_code == 206 and matching.content == whole.content[:2]
    # A current copy is a 304 before any range; HEAD says ranges are served, and the whole length.
    assert (await get(Range="bytes=0-1", **{"If-None-Match": etag})).status_code == 304
    head = await client.head(MOVIE, params=SMALL_MP4, headers={"Range": "bytes=0-1"})
    assert head.status_code == 200 and head.headers["accept-ranges"] == "bytes"
    assert int(head.headers["content-length"]) == size
