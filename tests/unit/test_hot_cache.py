"""The cache's in-memory tier and the kept decoded values: warm hits skip the disk, and never outlive the disk entry."""

import os
import sqlite3
import time

import pytest
from prometheus_client import REGISTRY

from service.infra.cache import INLINE_MAX_BYTES, DiskCache, EntryMeta
from service.infra.memory_tier import MemoryEntry, MemoryTier
from service.infra.threads import Limiters
from service.services.artifacts import Artifact, ArtifactStore, DecodedValues
from service.services.identity import data_key
from tests.clock import FakeClock
from tests.conftest import WEIRD_TIC

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


def reads(tier: str) -> float:
    return REGISTRY.get_sample_value("tess_cache_reads_total", {"tier": tier}) or 0.0


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
def cache(tmp_path):
    opened = DiskCache(tmp_path / "c", size_limit_bytes=64 * MIB, memory_max_bytes=4 * MIB)
    yield opened
    opened.close()


def value_file(cache: DiskCache, key: str):
    with sqlite3.connect(cache.directory / "cache.db") as db:
        ((name,),) = db.execute("SELECT filename FROM Cache WHERE key = ?", (key,)).fetchall()
    return cache.directory / name


# --- the memory tier mirrors the disk --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [100, INLINE_MAX_BYTES + 100], ids=["inline", "file"])
def test_a_written_entry_is_served_from_memory_with_the_same_metadata(cache, size):
    payload = os.urandom(size)
    stored = cache.put("k", payload, media_type="image/png", ttl_s=60, headers={"Content-Disposition": "x"})
    before = reads("memory")
    hot = cache.get_memory("k")
    assert hot is not None and hot.data == payload
    assert hot.meta == stored.meta == cache.get("k").meta
    assert reads("memory") == before + 1


def test_an_entry_read_from_disk_is_kept_in_memory(tmp_path):
    first = DiskCache(tmp_path / "c", size_limit_bytes=64 * MIB)
    first.put("k", b"payload", media_type="text/plain", ttl_s=60)
    first.close()
    restarted = DiskCache(tmp_path / "c", size_limit_bytes=64 * MIB)
    assert restarted.get_memory("k") is None, "a new process starts with an empty memory"
    assert restarted.get("k").data == b"payload"
    assert restarted.get_memory("k").data == b"payload"
    restarted.close()


def test_large_entries_and_a_disabled_tier_hold_nothing(tmp_path, cache):
    cache.put("large", os.urandom(MIB + 1), media_type="x/y", ttl_s=60)
    cache.get("large").close()
    assert cache.get_memory("large") is None
    off = DiskCache(tmp_path / "off", size_limit_bytes=64 * MIB, memory_max_bytes=0)
    off.put("k", b"payload", media_type="text/plain", ttl_s=60)
    assert off.get("k") is not None and off.get_memory("k") is None and len(off.memory) == 0
    off.close()


def test_delete_and_rewrite_leave_memory(cache, tmp_path):
    cache.put("k", b"old", media_type="text/plain", ttl_s=60)
    cache.delete("k")
    assert cache.get_memory("k") is None
    cache.put("k", b"old", media_type="text/plain", ttl_s=60)
    cache.put("k", b"new", media_type="text/plain", ttl_s=60)
    assert cache.get_memory("k").data == b"new"
    source = tmp_path / "big.bin"
    source.write_bytes(b"from a file")
    cache.put_file("k", source, media_type="text/plain", ttl_s=60)
    assert cache.get_memory("k") is None, "put_file replaced the entry: the old bytes must not be served"
    assert cache.get("k").read() == b"from a file"


def test_evicted_entries_leave_memory(tmp_path):
    cache = DiskCache(tmp_path / "c", size_limit_bytes=4 * MIB, memory_max_bytes=64 * MIB)
    for index in range(100):  # inline entries: no value file whose absence memory could notice on its own
        cache.put(f"k{index}", os.urandom(INLINE_MAX_BYTES - 1000), media_type="x/y", ttl_s=60)
    on_disk = [index for index in range(100) if cache._cache.get(f"k{index}", default=None) is not None]
    in_memory = [index for index in range(100) if cache.get_memory(f"k{index}") is not None]
    assert 0 < len(on_disk) < 100, "the size limit evicted some"
    assert in_memory == on_disk
    cache.close()


def test_a_file_changed_on_disk_is_checked_again_not_served_from_memory(cache):
    payload = os.urandom(INLINE_MAX_BYTES + 100)  # a value file, read whole
    cache.put("k", payload, media_type="x/y", ttl_s=60)
    path = value_file(cache, "k")
    time.sleep(0.01)  # so that the rewrite gets another mtime even on coarse clocks
    with path.open("r+b") as file:
        file.write(b"\x00corrupt")
    corrupt = counter("tess_cache_corrupt_total")
    assert cache.get_memory("k") is None
    assert cache.get("k") is None
    assert counter("tess_cache_corrupt_total") == corrupt + 1
    assert len(cache) == 0


def test_a_corrupt_entry_found_on_disk_leaves_memory(cache):
    cache.put("k", b"small payload", media_type="text/plain", ttl_s=60)
    with sqlite3.connect(cache.directory / "cache.db") as db:
        db.execute("UPDATE Cache SET value = ? WHERE key = ?", (b"small pAyload", "k"))
    assert cache.get("k") is None
    assert cache.get_memory("k") is None


def test_memory_forgets_an_entry_when_diskcache_would(tmp_path):
    clock = FakeClock()
    cache = DiskCache(tmp_path / "c", size_limit_bytes=64 * MIB, keep_stale_s=0, clock=clock)
    cache.put("k", b"payload", media_type="text/plain", ttl_s=0)
    clock.advance(0.01)
    assert cache.get("k") is None and cache.get_memory("k") is None
    stale = DiskCache(tmp_path / "s", size_limit_bytes=64 * MIB, keep_stale_s=600)
    stale.put("k", b"payload", media_type="text/plain", ttl_s=0)
    held = stale.get_memory("k")
    assert held is not None and not held.meta.is_fresh(), "kept expired, for stale-if-error, as on disk"
    cache.close()
    stale.close()


def test_memory_follows_the_expiry_diskcache_holds_not_this_process_setting(tmp_path):
    clock = FakeClock()
    writer = DiskCache(tmp_path / "c", size_limit_bytes=64 * MIB, keep_stale_s=0, clock=clock)
    writer.put("k", b"payload", media_type="text/plain", ttl_s=1)  # diskcache forgets it in 1 s
    writer.close()
    reader = DiskCache(tmp_path / "c", size_limit_bytes=64 * MIB, keep_stale_s=600, clock=clock)
    assert reader.get("k") is not None and reader.get_memory("k") is not None
    clock.advance(1.05)
    assert reader.get("k") is None
    assert reader.get_memory("k") is None, "kept no longer than on disk, whatever keep_stale_s says here"
    reader.close()


# --- the memory tier's own rules ---------------------------------------------------------------------------------


def entry(data: bytes, created_at: float = 0.0) -> MemoryEntry:
    meta = EntryMeta("x/y", '"e"', created_at, created_at + 60, len(data))
    return MemoryEntry(meta, data, time.time() + 60, None)


def test_memory_is_bounded_in_bytes_and_entries_and_drops_the_least_recently_used():
    tier = MemoryTier(max_bytes=10_000, max_entry_bytes=4_000, max_entries=3)
    for key in "abc":
        tier.fill(key, entry(b"x" * 1000), tier.epoch)
    assert tier.get("a", time.time()) is not None  # "a" is now the most recently used
    tier.fill("d", entry(b"x" * 1000), tier.epoch)
    assert len(tier) == 3 and tier.get("b", time.time()) is None
    for key in "efgh":
        tier.fill(key, entry(b"x" * 3000), tier.epoch)
    assert tier.size_bytes <= 10_000 and len(tier) == 2
    tier.fill("huge", entry(b"x" * 4001), tier.epoch)
    assert tier.get("huge", time.time()) is None


def test_a_fill_that_began_before_a_change_is_not_applied():
    tier = MemoryTier(max_bytes=MIB)
    seen = tier.epoch  # a reader looks at the disk...
    tier.forget("k")  # ...the entry is deleted or evicted meanwhile...
    tier.fill("k", entry(b"old"), seen)  # ...and the reader's copy must not come back
    assert tier.get("k", time.time()) is None


def test_an_older_copy_does_not_replace_a_newer_write():
    tier = MemoryTier(max_bytes=MIB)
    seen = tier.epoch
    tier.fill("k", entry(b"new", created_at=2.0), tier.epoch)
    tier.fill("k", entry(b"old", created_at=1.0), seen)
    assert tier.get("k", time.time()).data == b"new"


# --- ArtifactStore: warm hits stay on the event loop, decoded values are kept by ETag ----------------------------


class CountingCache(DiskCache):
    """A real cache that counts its disk reads and the decodes of its values."""

    disk_reads = 0

    def get(self, key):
        self.disk_reads += 1
        return super().get(key)


async def test_a_warm_body_hit_does_not_read_the_disk(tmp_path):
    cache = CountingCache(tmp_path / "c", size_limit_bytes=64 * MIB)
    store = ArtifactStore(cache, Limiters.create(cpu_threads=1, io_threads=1))

    async def produce() -> Artifact:
        return Artifact(b'{"ok": true}', "application/json", 60)

    made, hit = await store.body("k", produce)
    reads_after_miss = cache.disk_reads
    again, hit_again = await store.body("k", produce)
    assert (hit, hit_again) == (False, True)
    assert again.data == made.data and again.meta == made.meta
    assert cache.disk_reads == reads_after_miss
    cache.close()


async def test_decoded_values_are_kept_per_etag_and_decoded_again_when_the_entry_changes(tmp_path):
    cache = CountingCache(tmp_path / "c", size_limit_bytes=64 * MIB)
    store = ArtifactStore(cache, Limiters.create(cpu_threads=1, io_threads=1))
    decodes = produced = 0

    def decode(blob: bytes) -> tuple[int, ...]:
        nonlocal decodes
        decodes += 1
        return tuple(blob)

    async def produce() -> tuple[int, ...]:
        nonlocal produced
        produced += 1
        return (1, 2, 3)

    async def value() -> tuple[int, ...]:
        return await store.value(data_key("x"), produce, encode=bytes, decode=decode, ttl_s=60)

    assert await value() == (1, 2, 3)
    assert [await value() for _ in range(3)] == [(1, 2, 3)] * 3
    assert (produced, decodes) == (1, 0), "the produced value is kept: hits neither decode nor produce"
    cache.put(data_key("x"), bytes((4, 5)), media_type="application/octet-stream", ttl_s=60)  # other bytes, other ETag
    assert await value() == (4, 5) and decodes == 1
    cache.delete(data_key("x"))
    assert await value() == (1, 2, 3) and produced == 2, "a deleted entry's value is not served"
    cache.close()


async def test_a_value_of_none_is_a_value(tmp_path):
    """A cached None (e.g. "no such TIC entry") is served from the cache, not produced again."""
    cache = DiskCache(tmp_path / "c", size_limit_bytes=64 * MIB)
    store = ArtifactStore(cache, Limiters.create(cpu_threads=1, io_threads=1), keep_values=False)
    produced = 0

    async def produce() -> None:
        nonlocal produced
        produced += 1

    for _ in range(2):
        await store.value("none", produce, encode=lambda _: b"null", decode=lambda _: None, ttl_s=60)
    assert produced == 1
    cache.close()


def test_decoded_values_are_bounded():
    values = DecodedValues(small_max=2, small_max_bytes=1000, large_max=1)
    for key in "abc":
        values.put(key, "e", 10, key)
    assert len(values) == 2 and values.get("a", "e") != "a"
    values.put("big1", "e", 100_000, "table 1")
    values.put("big2", "e", 100_000, "table 2")
    assert values.get("big2", "e") == "table 2" and values.get("big1", "e") != "table 1"
    assert values.get("big2", "other etag") != "table 2"


# --- through HTTP ----------------------------------------------------------------------------------------------


async def test_a_warm_hit_over_http_never_touches_the_disk_cache_and_answers_identically(make_client, mast):
    path = f"/tic/{WEIRD_TIC}/tces"
    # The edge tier (whole answers by URL, in front of routing) is off: these requests must reach the cache.
    async with make_client(edge_cache_mb=0) as client:
        first = await client.get(path)  # produced, stored, kept in memory
    async with make_client(edge_cache_mb=0) as client:  # a new process on the same cache: memory starts empty
        from_disk = await client.get(path)
        disk, memory = reads("disk"), reads("memory")
        from_memory = [await client.get(path) for _ in range(3)]
        assert reads("disk") == disk, "warm hits did not read the disk cache"
        assert reads("memory") == memory + 3
    assert first.headers["x-cache"] == "MISS" and mast.count(endpoint="exomast.tces") == 1
    for response in from_memory:
        assert response.status_code == 200 and response.content == from_disk.content
        assert response.headers["x-cache"] == "HIT"
        drop_age = {k: v for k, v in response.headers.items() if k not in ("cache-control", "x-request-id")}
        assert drop_age == {k: v for k, v in from_disk.headers.items() if k not in ("cache-control", "x-request-id")}


async def test_with_the_tier_off_every_hit_reads_the_disk(make_client):
    path = f"/tic/{WEIRD_TIC}/tces"
    async with make_client(hot_cache_mb=0, edge_cache_mb=0) as client:
        await client.get(path)
        disk = reads("disk")
        assert (await client.get(path)).headers["x-cache"] == "HIT"
        assert reads("disk") > disk
