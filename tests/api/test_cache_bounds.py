"""The cache's size limit holds on disk under churn through the service, and eviction keeps answers correct."""

import sqlite3
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from tests.conftest import WEIRD_TCE, WEIRD_TIC

pytestmark = pytest.mark.anyio

LC_PATH = f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve"
LIMIT_MB = 16


def disk_usage(directory: Path) -> int:
    """Bytes the cache directory takes on disk (allocated blocks, as du counts them), database and WAL included."""
    return sum(p.lstat().st_blocks * 512 for p in directory.rglob("*"))


def cached_keys(cache_dir: Path, suffix: str) -> list[str]:
    with sqlite3.connect(cache_dir / "cache.db") as db:
        return [key for (key,) in db.execute("SELECT key FROM Cache").fetchall() if key.endswith(suffix)]


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.mark.slow
async def test_disk_use_stays_within_the_limit_and_evicted_answers_come_back_whole(make_client, make_settings, mast):
    cache_dir = make_settings().cache_dir
    limit = LIMIT_MB * 1024 * 1024
    evictions = metric("tess_cache_evictions_total")
    # 60 distinct four-day windows of every column: about 0.5 MB of JSON each, 30 MB in all, past the 16 MB limit.
    windows = [{"start": 1325.5 + 0.35 * i, "end": 1329.5 + 0.35 * i} for i in range(60)]
    first: dict[int, bytes] = {}
    most = 0
    # The edge tier off: asked again, an evicted answer must come from the disk cache's own path, not from memory.
    async with make_client(cache_size_limit_mb=LIMIT_MB, edge_cache_mb=0) as client:
        for round_ in range(2):
            for index, window in enumerate(windows):
                response = await client.get(LC_PATH, params=window)
                assert response.status_code == 200
                if round_ == 0:
                    first[index] = response.content
                else:
                    assert response.content == first[index], "an evicted answer is made again, byte for byte"
                most = max(most, disk_usage(cache_dir))
        assert sum(map(len, first.values())) > limit, "the test wrote more than the cache may hold"
        # The first window was pushed out by the last ones: asked again, it is made again, whole.
        assert not cached_keys(cache_dir, ":1325.5:1329.5"), "the first window was evicted"
        again = await client.get(LC_PATH, params=windows[0])
        assert again.status_code == 200 and again.content == first[0]
        assert len(again.content) == int(again.headers["content-length"])
        assert cached_keys(cache_dir, ":1325.5:1329.5")

    assert most <= limit * 1.05, f"the cache took {most / 2**20:.1f} MiB on disk, over its {LIMIT_MB} MiB"
    assert metric("tess_cache_evictions_total") > evictions
    assert 0 < metric("tess_cache_volume_bytes") <= limit
    assert mast.count(endpoint="exomast.table") >= 2, "the evicted DV table was fetched again"
