"""The edge tier before a small ASGI app that counts its calls: what it keeps, for how long, what it passes on."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from service.infra.edge_tier import EdgeTier
from service.infra.head import HeadAsGetMiddleware

BODY = b"x" * 5000


class Origin:
    """Answers every GET with BODY and the headers it is given; counts the calls it gets."""

    def __init__(self) -> None:
        self.calls = 0
        self.cache_control = "public, max-age=60"
        self.status = 200
        self.extra: list[tuple[bytes, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        headers = [(b"etag", b'"abc"'), (b"cache-control", self.cache_control.encode()), (b"x-cache", b"MISS"),
                   (b"content-length", str(len(BODY)).encode()), *self.extra]  # fmt: skip
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        # In two parts, as a streamed file would be.
        await send({"type": "http.response.body", "body": BODY[:3000], "more_body": True})
        await send({"type": "http.response.body", "body": BODY[3000:]})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_for(app: Callable[..., object]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge")  # type: ignore[arg-type]


@pytest.fixture
def origin() -> Origin:
    return Origin()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def edge(origin: Origin, clock: Clock, max_bytes: int = 1 << 20, entry_max_bytes: int = 1 << 20) -> EdgeTier:
    return EdgeTier(origin, max_bytes=max_bytes, entry_max_bytes=entry_max_bytes, clock=clock)


@pytest.mark.anyio
async def test_a_fresh_answer_is_served_again_without_the_app_until_its_max_age(origin: Origin, clock: Clock) -> None:
    async with client_for(edge(origin, clock)) as client:
        first = await client.get("/movie?a=1")
        clock.now += 30
        second = await client.get("/movie?a=1")
        assert origin.calls == 1
        assert second.content == first.content == BODY
        assert second.headers["etag"] == '"abc"' and second.headers["x-cache"] == "HIT"
        assert second.headers["age"] == "30" and "age" not in first.headers
        clock.now += 31  # past max-age=60: asked again
        await client.get("/movie?a=1")
        assert origin.calls == 2
        # Another query string, another Accept: other answers.
        await client.get("/movie?a=2")
        await client.get("/movie?a=1", headers={"Accept": "image/png"})
        assert origin.calls == 4


@pytest.mark.anyio
async def test_if_none_match_is_a_304_from_the_edge(origin: Origin, clock: Clock) -> None:
    async with client_for(edge(origin, clock)) as client:
        await client.get("/m")
        matched = await client.get("/m", headers={"If-None-Match": 'W/"abc", "zzz"'})
        other = await client.get("/m", headers={"If-None-Match": '"zzz"'})
    assert matched.status_code == 304 and matched.content == b"" and matched.headers["etag"] == '"abc"'
    assert other.status_code == 200 and other.content == BODY
    assert origin.calls == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "cache_control, status, extra",
    [
        ("public, max-age=0, must-revalidate", 200, []),  # stale answers are sent so
        ("no-store", 200, []),  # problem documents
        ("private, max-age=60", 200, []),
        ("public, max-age=60", 206, []),
        ("public, max-age=60", 200, [(b"x-stale-reason", b"TESScut failed")]),
        ("public, max-age=60", 200, [(b"set-cookie", b"a=b")]),
    ],
)
async def test_what_is_not_kept(
    origin: Origin, clock: Clock, cache_control: str, status: int, extra: list[tuple[bytes, bytes]]
) -> None:
    origin.cache_control, origin.status, origin.extra = cache_control, status, extra
    async with client_for(edge(origin, clock)) as client:
        await client.get("/m")
        await client.get("/m")
    assert origin.calls == 2


@pytest.mark.anyio
async def test_ranges_and_other_conditionals_go_to_the_app(origin: Origin, clock: Clock) -> None:
    async with client_for(edge(origin, clock)) as client:
        await client.get("/m")
        await client.get("/m", headers={"Range": "bytes=0-9"})
        await client.get("/m", headers={"If-Modified-Since": "Sun, 06 Dec 2026 00:00:00 GMT"})
        await client.get("/m")
    assert origin.calls == 3


@pytest.mark.anyio
async def test_a_head_is_not_kept_but_is_answered_from_a_kept_get(origin: Origin, clock: Clock) -> None:
    async with client_for(HeadAsGetMiddleware(edge(origin, clock))) as client:
        head = await client.head("/m")
        assert origin.calls == 1 and head.content == b""
        await client.get("/m")
        assert origin.calls == 2  # the HEAD kept nothing
        again = await client.head("/m")
        assert origin.calls == 2 and again.headers["content-length"] == str(len(BODY)) and again.content == b""


@pytest.mark.anyio
async def test_memory_is_bounded_least_recently_used_out_first(origin: Origin, clock: Clock) -> None:
    async with client_for(edge(origin, clock, max_bytes=2 * len(BODY), entry_max_bytes=len(BODY))) as client:
        for path in ("/a", "/b", "/a", "/c"):  # /b is the least recently used when /c arrives
            await client.get(path)
        assert origin.calls == 3
        await client.get("/a")
        await client.get("/c")
        assert origin.calls == 3
        await client.get("/b")
        assert origin.calls == 4
    async with client_for(edge(origin, clock, entry_max_bytes=len(BODY) - 1)) as client:
        await client.get("/big")
        await client.get("/big")
    assert origin.calls == 6  # larger than an entry may be: never kept
