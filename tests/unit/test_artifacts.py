import asyncio
import threading

import pytest

from service.errors import BadUpstreamResponse, NotFound, UpstreamTimeout, UpstreamUnavailable
from service.infra.cache import DiskCache
from service.infra.threads import Limiters
from service.services.artifacts import Artifact, ArtifactStore, upstream_ledger
from service.services.identity import data_key

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

    assert (
        await store.value(data_key("x"), produce, encode=lambda v: str(v).encode(), decode=lambda b: int(b), ttl_s=60)
        == 42
    )
    cache.put(data_key("x"), b"garbage", media_type="application/octet-stream", ttl_s=60)
    assert (
        await store.value(data_key("x"), produce, encode=lambda v: str(v).encode(), decode=lambda b: int(b), ttl_s=60)
        == 42
    )
    assert calls == 2
    cache.close()


# --- stale-if-error --------------------------------------------------------------------------------------------


def _expired_entry(tmp_path, *, keep_stale_s=600):
    cache = DiskCache(tmp_path, size_limit_bytes=16 * 1024 * 1024, keep_stale_s=keep_stale_s)
    cache.put("k", b"old answer", media_type="text/plain", ttl_s=0)
    return cache, ArtifactStore(cache, Limiters.create(cpu_threads=1, io_threads=2))


async def test_expired_body_is_served_stale_and_left_as_it_was_when_upstream_fails(tmp_path):
    cache, store = _expired_entry(tmp_path)
    created = cache.get("k").meta.created_at

    async def failing() -> Artifact:
        raise UpstreamUnavailable("MAST is down (HTTP 503)", upstream="TESScut")

    results = await asyncio.gather(store.body("k", failing), store.body("k", failing))
    for body, hit in results:
        assert body.read() == b"old answer" and not hit
        assert body.stale_reason == "TESScut failed (503 Upstream unavailable): MAST is down (HTTP 503)"
    assert cache.get("k").meta.created_at == created
    cache.close()


async def test_stale_is_not_served_past_its_window_or_for_not_found(tmp_path):
    cache, store = _expired_entry(tmp_path, keep_stale_s=600)

    async def gone() -> Artifact:
        raise NotFound("no such TCE")

    with pytest.raises(NotFound):
        await store.body("k", gone)

    async def failing() -> Artifact:
        raise UpstreamTimeout("slow", upstream="ExoMAST")

    store._stale_window_s = 0  # an entry kept longer than the window allows (e.g. the setting was lowered)
    with pytest.raises(UpstreamTimeout):
        await store.body("k", failing)
    cache.close()


async def test_stale_value_marks_the_ledger_and_the_body_made_from_it_is_not_cached(tmp_path):
    cache = DiskCache(tmp_path, size_limit_bytes=16 * 1024 * 1024)
    store = ArtifactStore(cache, Limiters.create(cpu_threads=1, io_threads=2))
    codec = {"encode": lambda v: str(v).encode(), "decode": lambda b: int(b), "ttl_s": 0}

    async def fetched() -> int:
        return 7

    assert await store.value("n", fetched, **codec) == 7

    async def failing() -> int:
        raise BadUpstreamResponse("malformed JSON", upstream="ExoMAST")

    async def answer() -> Artifact:
        return Artifact(str(await store.value("n", failing, **codec)).encode(), "text/plain", 60)

    with upstream_ledger() as ledger:
        body, hit = await store.body("answer", answer)
    assert body.read() == b"7" and not hit
    assert body.stale_reason is not None and "malformed JSON" in body.stale_reason
    assert ledger.stale_reason == body.stale_reason
    assert cache.get("answer") is None, "made from stale data: not cached"
    cache.close()
