"""A child process for the big-body test: one replica's cache writes, or reads, one large body; prints its RSS.

    python -m tests.shared.big_body write|read KEY FILE CACHE_DIR REDIS_URL BLOB_URL

`write` stores FILE under KEY (put_file: hashed, copied, uploaded in parts); `read` gets KEY from the shared tier into
this replica's disk and streams it out, hashing it. Prints one JSON line: the most the process's resident size grew
over its size just before (sampled every 5 ms from /proc/self/statm; ru_maxrss would hide growth under the peak of
the imports), and (reading) the body's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from pathlib import Path

from service.infra.shared_tier import SharedTier
from service.infra.tiered_cache import TieredCache

MIB = 1024 * 1024


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


class PeakRss:
    """The largest resident size seen while the block runs, sampled by a thread."""

    def __init__(self) -> None:
        self.peak = rss_mib()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, rss_mib())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def main() -> None:
    action, key, file, cache_dir, redis_url, blob_url = sys.argv[1:]
    cache = TieredCache(Path(cache_dir), shared=SharedTier(redis_url, blob_url), size_limit_bytes=4096 * MIB)
    before = rss_mib()
    digest = hashlib.sha256()
    with PeakRss() as rss:
        if action == "write":
            cache.put_file(key, Path(file), media_type="application/fits", ttl_s=3600)
        else:
            body = cache.get(key)
            assert body is not None, "the shared tier did not give the body"
            for chunk in body.chunks():
                digest.update(chunk)
            body.close()
    cache.close()
    read = {"sha256": digest.hexdigest()} if action == "read" else {}
    print(json.dumps({"rss_growth_mib": round(rss.peak - before, 1), **read}))


if __name__ == "__main__":
    main()
