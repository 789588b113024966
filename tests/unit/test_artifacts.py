import asyncio
import threading

import pytest

from service.infra.cache import DiskCache
from service.infra.threads import Limiters
from service.services.artifacts import Artifact, ArtifactStore

pytestmark = pytest.mark.anyio


class FirstReadsMiss(DiskCache):
    """A real cache whose first reads miss together, so concurrent callers meet the entry only inside the flight."""

    def __init__(self, *args, misses: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.misses = misses
        self.lock = threading.Lock()
        self.together = threading.Barrier(misses, timeout=5)

    def get(self, key):
        with self.lock:
            miss = self.misses > 0
            self.misses -= 1
        if miss:
            self.together.wait()  # both callers' first checks miss before either can look again
            return None
        return super().get(key)


async def test_waiters_never_share_one_file_handle(tmp_path):
    payload = bytes(range(256)) * 12_000  # ~3 MB: file-backed and streamed, not read whole
    cache = FirstReadsMiss(tmp_path, size_limit_bytes=64 * 1024 * 1024, misses=2)
    cache.put("k", payload, media_type="application/octet-stream", ttl_s=60)
    store = ArtifactStore(cache, Limiters.create(cpu_threads=2, io_threads=4))

    async def never() -> Artifact:
        raise AssertionError("the entry exists; nothing should be produced")

    results = await asyncio.gather(store.body("k", never), store.body("k", never))
    bodies = [b"".join(body.chunks()) for body, _ in results]
    assert bodies == [payload, payload]
    assert all(hit for _, hit in results)
    cache.close()


async def test_undecodable_entries_are_dropped_and_produced_again(tmp_path):
    cache = DiskCache(tmp_path, size_limit_bytes=16 * 1024 * 1024)
    store = ArtifactStore(cache, Limiters.create(cpu_threads=1, io_threads=1))
    calls = 0

    async def produce() -> int:
        nonlocal calls
        calls += 1
        return 42

    assert await store.value("x", produce, encode=lambda v: str(v).encode(), decode=lambda b: int(b), ttl_s=60) == 42
    cache.put("v1:x", b"garbage", media_type="application/octet-stream", ttl_s=60)
    assert await store.value("x", produce, encode=lambda v: str(v).encode(), decode=lambda b: int(b), ttl_s=60) == 42
    assert calls == 2
    cache.close()
