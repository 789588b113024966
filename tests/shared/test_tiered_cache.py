"""Two replicas' caches over one real redis-server and one object store (a `file://` directory): what one stores,
the other reads, checked; what is corrupt, expired or unreachable is a miss, never an error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client import REGISTRY

from service.infra.cache import DiskCache
from service.infra.cache_entries import EntryMeta
from service.infra.shared_tier import SharedTier
from service.infra.tiered_cache import TieredCache
from tests.clock import FakeClock
from tests.redis_server import RedisServer, redis_server
from tests.s3_server import s3_server

pytestmark = pytest.mark.process

BODY_MAX = 64 * 1024
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as running:
        yield running


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    client = server.client()
    client.flushall()
    yield client
    client.close()


class Replicas:
    """Two replicas' caches (their own directories and clocks) sharing one Redis and one object store."""

    def __init__(self, root: Path, redis_url: str, blob_url: str | None, clock: FakeClock) -> None:
        self.blob_dir = root / "blobs"
        self.a, self.b = (
            TieredCache(
                root / name,
                shared=SharedTier(redis_url, blob_url, body_max_bytes=BODY_MAX, retry_after_s=30, clock=clock),
                size_limit_bytes=512 * MIB,
                clock=clock,
            )
            for name in ("a", "b")
        )


def shared_file(replicas: Replicas, path: Path, key: str, size: int, media_type: str) -> tuple[Path, EntryMeta]:
    """Write ``size`` random bytes to ``path`` and store them under ``key`` through replica A; return both."""
    path.write_bytes(os.urandom(size))
    return path, replicas.a.put_file(key, path, media_type=media_type, ttl_s=600)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=time.time())


@pytest.fixture
def replicas(tmp_path: Path, server: RedisServer, client: redis.Redis, clock: FakeClock) -> Iterator[Replicas]:
    made = Replicas(tmp_path, server.url, f"file://{tmp_path / 'blobs'}", clock)
    yield made
    made.a.close()
    made.b.close()


def test_a_small_answer_stored_by_one_replica_is_read_by_the_other(replicas: Replicas, client: redis.Redis) -> None:
    payload = b'{"tces": ["1"]}'
    stored = replicas.a.put("tces:1", payload, media_type="application/json", ttl_s=600, headers={"X-A": "1"})
    found = replicas.b.get("tces:1")
    assert found is not None and found.read() == payload
    # The same validators and freshness on both replicas: a client may switch between them.
    assert found.meta == stored.meta
    assert found.meta.headers == {"X-A": "1"}
    assert client.hget("tess:cache:tces:1", "body") == payload and not list(replicas.blob_dir.glob("**/*"))
    # Now on B's own disk: served with Redis emptied.
    client.flushall()
    again = replicas.b.get("tces:1")
    assert again is not None and again.read() == payload


def test_a_large_body_goes_through_the_object_store_in_chunks(
    replicas: Replicas, client: redis.Redis, tmp_path: Path
) -> None:
    source, meta = shared_file(replicas, tmp_path / "cutout.fits", "cutout:1", 3 * MIB + 17, "application/fits")
    record = client.hgetall("tess:cache:cutout:1")
    assert b"body" not in record and record[b"blob"] == b"blobs/" + meta.etag.strip('"').encode()
    assert (replicas.blob_dir / record[b"blob"].decode()).stat().st_size == meta.size
    found = replicas.b.get("cutout:1")
    assert found is not None and found.meta.etag == meta.etag
    assert b"".join(found.chunks()) == source.read_bytes()
    found.close()


def test_concurrent_reads_of_one_large_entry_each_get_it_whole(
    replicas: Replicas, client: redis.Redis, tmp_path: Path
) -> None:
    source, _ = shared_file(replicas, tmp_path / "movie.gif", "movie:3", 4 * MIB, "image/gif")

    def read() -> bytes:
        found = replicas.b.get("movie:3")
        assert found is not None
        try:
            return b"".join(found.chunks())
        finally:
            found.close()

    copies = REGISTRY.get_sample_value("tess_cache_shared_reads_total", {"outcome": "hit"}) or 0.0
    with ThreadPoolExecutor(max_workers=6) as pool:
        bodies = list(pool.map(lambda _: read(), range(6)))
    assert all(body == source.read_bytes() for body in bodies)
    assert client.exists("tess:cache:movie:3"), "a good shared entry was dropped"
    # One thread copied it from the shared tier; the others waited and read it from this disk.
    assert REGISTRY.get_sample_value("tess_cache_shared_reads_total", {"outcome": "hit"}) == copies + 1


def test_a_replica_whose_disk_fails_misses_and_leaves_the_shared_entry(
    replicas: Replicas, client: redis.Redis, tmp_path: Path
) -> None:
    source, _ = shared_file(replicas, tmp_path / "cutout.fits", "cutout:9", 2 * MIB, "application/fits")
    incoming = tmp_path / "b" / "incoming"
    if incoming.exists():
        incoming.rmdir()
    incoming.write_bytes(b"not a directory")  # the tests run as root, which ignores modes: a file breaks writes
    assert replicas.b.get("cutout:9") is None  # a miss, not an exception
    assert client.exists("tess:cache:cutout:9")
    incoming.unlink()
    found = replicas.b.get("cutout:9")
    assert found is not None and b"".join(found.chunks()) == source.read_bytes()
    found.close()


def test_a_large_body_crosses_replicas_through_an_s3_server(
    tmp_path: Path, server: RedisServer, client: redis.Redis, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with s3_server() as s3:
        for name, value in s3.env.items():
            monkeypatch.setenv(name, value)  # what the service reads, as any S3 client does
        replicas = Replicas(tmp_path, server.url, f"s3://{s3.bucket}/cache", clock)
        source, meta = shared_file(
            replicas, tmp_path / "movie.mp4", "movie:2", 11 * MIB, "video/mp4"
        )  # three multipart parts of 5 MB
        listed = httpx.get(f"{s3.endpoint}/{s3.bucket}?list-type=2", timeout=10).text
        assert f"<Key>cache/blobs/{meta.etag.strip(chr(34))}</Key>" in listed
        found = replicas.b.get("movie:2")
        assert found is not None and b"".join(found.chunks()) == source.read_bytes()
        found.close()


def test_without_an_object_store_large_bodies_stay_local(
    tmp_path: Path, server: RedisServer, client: redis.Redis, clock: FakeClock
) -> None:
    replicas = Replicas(tmp_path, server.url, None, clock)
    replicas.a.put("movie:1", os.urandom(BODY_MAX + 1), media_type="image/gif", ttl_s=600)
    assert replicas.b.get("movie:1") is None and client.dbsize() == 0
    replicas.a.put("small:1", b"x", media_type="text/plain", ttl_s=600)
    assert replicas.b.get("small:1") is not None


def test_corrupt_shared_bytes_are_a_miss_and_are_dropped(
    replicas: Replicas, client: redis.Redis, tmp_path: Path
) -> None:
    replicas.a.put("tces:2", b"right", media_type="text/plain", ttl_s=600)
    client.hset("tess:cache:tces:2", "body", b"wrong")
    assert replicas.b.get("tces:2") is None
    assert not client.exists("tess:cache:tces:2")

    source, _ = shared_file(replicas, tmp_path / "big.bin", "big:1", BODY_MAX * 3, "application/octet-stream")
    blob = replicas.blob_dir / client.hget("tess:cache:big:1", "blob").decode()  # type: ignore[union-attr]
    blob.write_bytes(b"\0" + source.read_bytes()[1:])
    assert replicas.b.get("big:1") is None
    assert not list((tmp_path / "b").glob("incoming/*")), "a rejected download must not stay behind"


def test_an_entry_past_its_stale_window_is_a_miss(replicas: Replicas, clock: FakeClock) -> None:
    replicas.a.put("tces:3", b"old", media_type="text/plain", ttl_s=10)
    clock.advance(10 + replicas.b.keep_stale_s + 1)
    assert replicas.b.get("tces:3") is None


def test_entries_expire_from_redis_with_their_stale_window(replicas: Replicas, client: redis.Redis) -> None:
    replicas.a.put("tces:4", b"x", media_type="text/plain", ttl_s=60)
    ttl_ms = client.pttl("tess:cache:tces:4")
    assert 0 < ttl_ms <= (60 + replicas.a.keep_stale_s) * 1000
    assert ttl_ms > (replicas.a.keep_stale_s) * 1000


def test_a_redis_outage_leaves_the_local_tiers_serving_and_says_so(tmp_path: Path, clock: FakeClock) -> None:
    (tmp_path / "r").mkdir()
    with redis_server(tmp_path / "r") as server:
        replicas = Replicas(tmp_path, server.url, f"file://{tmp_path / 'blobs'}", clock)
        replicas.a.put("tces:5", b"kept", media_type="text/plain", ttl_s=600)
        server.stop()
        started = time.monotonic()
        # Writes and reads go on with the local tiers; nothing raises.
        replicas.a.put("tces:6", b"local", media_type="text/plain", ttl_s=600)
        assert replicas.a.get("tces:6") is not None and replicas.a.get("tces:5") is not None
        assert replicas.b.get("tces:5") is None
        ok, state, detail = replicas.a.shared.state()
        assert (ok, state) == (False, "unavailable") and detail and "ConnectionError" in detail
        # Once down, the tier is not asked again until retry_after_s: later calls cost nothing.
        for _ in range(50):
            assert replicas.b.get("tces:missing") is None
        assert time.monotonic() - started < 2 * 2.0 + 1, "calls waited on a dead server"
        server.start()
        clock.advance(31)
        assert replicas.b.shared.ping()
        assert replicas.b.get("tces:5") is None  # a cache Redis restarts empty: a miss, to be fetched again
        assert replicas.a.shared.ping() and replicas.a.shared.state() == (True, "available", None)
        replicas.a.put("tces:7", b"again", media_type="text/plain", ttl_s=600)
        found = replicas.b.get("tces:7")
        assert found is not None and found.read() == b"again"


def test_a_plain_disk_cache_is_what_runs_without_configuration(tmp_path: Path) -> None:
    from service.settings import Settings
    from service.wiring import _disk_cache

    cache = _disk_cache(Settings(cache_dir=tmp_path), time.time)
    assert type(cache) is DiskCache
    shared = _disk_cache(Settings(cache_dir=tmp_path / "s", cache_redis_url="redis://127.0.0.1:1/0"), time.time)
    assert isinstance(shared, TieredCache)
    shared.close()
    cache.close()


def test_the_blob_store_needs_redis_and_a_known_scheme() -> None:
    from pydantic import ValidationError

    from service.settings import Settings

    with pytest.raises(ValidationError, match="needs cache_redis_url"):
        Settings(blob_store_url="s3://bucket/prefix")
    with pytest.raises(ValidationError, match="s3://bucket"):
        Settings(cache_redis_url="redis://x/0", blob_store_url="gs://bucket")
