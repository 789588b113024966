"""The cache's shared tier: entries every replica sees, in Redis and an S3-compatible object store (opt-in).

Each replica keeps its own tiers (memory, then its disk cache); this one sits behind them. An entry is its metadata
(the same JSON tag the disk cache keeps, with the ETag that is the SHA-256 of the bytes) in a Redis hash, with the
bytes themselves beside it in the hash when they are small, or in the object store when they are large. Objects are
named by their ETag (``<prefix>/blobs/<etag>``): written whole before the Redis record that points at them, they are
never seen half-written, the same bytes are stored once, and a second replica's upload of them is harmless.
A replica that reads an entry checks its bytes against the ETag before it keeps or serves them (`DiskCache`).

Blocking, like `DiskCache`: its methods run in worker threads. Nothing here raises: when Redis or the store fails,
a read is a miss and a write is skipped (logged and counted), and the tier stays switched off for ``retry_after_s``
so that a dead server costs each request nothing; `state` says so to `/ready`.

Libraries: redis-py (the reference Redis client; short socket timeouts so a dead server cannot hold a thread) and
obstore (S3, and ``file://`` directories, behind one interface; streams both ways in 5 MB parts, measured in
../shared/scale-out.md at ~30 MiB of client memory for a 200 MB object).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
import redis
from obstore.store import from_url

from service.infra.metrics import SHARED_TIER_ERRORS

log = logging.getLogger(__name__)

# Bodies up to this size live in Redis beside their metadata; larger ones in the object store.
REDIS_BODY_MAX_BYTES = 256 * 1024
BLOB_CHUNK_BYTES = 1024 * 1024
_REDIS_TIMEOUT_S = 2.0
# What the clients raise when their server is down or misbehaves (obstore raises OSError subclasses and its own).
_FAILURES: tuple[type[BaseException], ...] = (redis.RedisError, OSError, obstore.exceptions.BaseError)


class LocalWriteFailed(Exception):
    """Writing what the shared tier sent failed on this replica's disk: not the shared tier's failure."""


@dataclass(frozen=True)
class SharedEntry:
    """A record of the shared tier: the metadata tag and either the bytes or the name of their object."""

    tag: str
    data: bytes | None
    blob: str | None


class SharedTier:
    """Redis for metadata and small bodies, an object store (optional) for large ones; see the module's doc."""

    def __init__(
        self,
        redis_url: str,
        blob_store_url: str | None = None,
        *,
        key_prefix: str = "tess:cache:",
        body_max_bytes: int = REDIS_BODY_MAX_BYTES,
        retry_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis.Redis.from_url(
            redis_url, socket_timeout=_REDIS_TIMEOUT_S, socket_connect_timeout=_REDIS_TIMEOUT_S
        )
        self._store: Any = open_blob_store(blob_store_url) if blob_store_url else None
        self._prefix = key_prefix
        self.body_max_bytes = body_max_bytes
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._down_until = 0.0
        self._last_error: str | None = None
        self._lock = threading.Lock()

    # --- state -------------------------------------------------------------------------------------------------

    def state(self) -> tuple[bool, str, str | None]:
        """(ok, state, detail) for `/ready`: ``available``, or ``unavailable`` with the last failure."""
        if self._clock() < self._down_until:
            return False, "unavailable", self._last_error
        return True, "available", None

    def ping(self) -> bool:
        """Ask Redis (and list the store) now, whatever the state; True when both answer."""
        return bool(self._guarded("ping", lambda: bool(self._redis.ping()) and self._list_store(), default=False))

    def _list_store(self) -> bool:
        if self._store is not None:
            next(iter(obstore.list(self._store, prefix="blobs/", chunk_size=1)), None)
        return True

    def _guarded(self, what: str, call: Callable[[], Any], default: Any) -> Any:
        try:
            result = call()
        except _FAILURES as error:
            with self._lock:
                self._down_until = self._clock() + self._retry_after_s
                self._last_error = f"{what}: {type(error).__name__}: {error}"[:300]
            SHARED_TIER_ERRORS.labels(what).inc()
            log.warning(
                "shared cache tier: %s failed (%s); local tiers only for %.0f s", what, error, self._retry_after_s
            )
            return default
        with self._lock:
            self._down_until, self._last_error = 0.0, None
        return result

    def _usable(self) -> bool:
        return self._clock() >= self._down_until

    # --- reading -------------------------------------------------------------------------------------------------

    def fetch(self, key: str) -> SharedEntry | None:
        """Return the shared record of ``key``, or None (absent, or the tier is down)."""
        if not self._usable():
            return None
        found = self._guarded("read", lambda: self._redis.hgetall(self._prefix + key), default={})
        if not found or b"tag" not in found:
            return None
        blob = found.get(b"blob")
        return SharedEntry(found[b"tag"].decode(), found.get(b"body"), blob.decode() if blob else None)

    def copy_blob(self, name: str, write: Callable[[bytes], object]) -> bool:
        """Stream the object ``name`` to ``write`` in chunks; False when it is gone or the store fails midway."""
        if self._store is None or not self._usable():
            return False

        def copy() -> bool:
            try:
                result = obstore.get(self._store, name)
            except FileNotFoundError:
                return False  # a missing object is a miss, not a store that is down
            for chunk in result.stream(min_chunk_size=BLOB_CHUNK_BYTES):
                write(bytes(chunk))
            return True

        return bool(self._guarded("blob read", copy, default=False))

    # --- writing -------------------------------------------------------------------------------------------------

    def store(
        self, key: str, tag: str, etag: str, expire_s: float, *, data: bytes | None = None, path: Path | None = None
    ) -> bool:
        """Share an entry just stored locally: its body (``data``, or the file at ``path``) and then its record.

        Skipped (False) when the tier is down, when the body is large and there is no object store, or on failure.
        """
        size = len(data) if data is not None else (path.stat().st_size if path is not None else 0)
        expire_ms = max(1, int(expire_s * 1000))
        if not self._usable() or (size > self.body_max_bytes and self._store is None):
            return False
        record: dict[str, bytes | str] = {"tag": tag}
        if size <= self.body_max_bytes:
            record["body"] = data if data is not None else path.read_bytes()  # type: ignore[union-attr]
        else:
            name = "blobs/" + etag.strip('"')
            source: bytes | Path = data if data is not None else path  # type: ignore[assignment]
            if not self._guarded("blob write", lambda: obstore.put(self._store, name, source), default=None):
                return False
            record["blob"] = name

        def write() -> bool:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._prefix + key, mapping=record)
                pipe.pexpire(self._prefix + key, expire_ms)
                pipe.execute()
            return True

        return bool(self._guarded("write", write, default=False))

    def delete(self, key: str) -> None:
        """Forget the record of ``key`` (its object, named by content, may serve other keys and stays)."""
        if self._usable():
            self._guarded("delete", lambda: self._redis.delete(self._prefix + key), default=None)

    def close(self) -> None:
        """Close the Redis connection pool."""
        self._guarded("close", self._redis.close, default=None)


def open_blob_store(url: str) -> Any:
    """Open the object store of ``s3://bucket/prefix`` or ``file:///directory`` (created when missing).

    S3 takes its credentials, region and endpoint from the usual AWS_* variables; an ``http://`` endpoint is allowed.
    """
    if url.startswith("file://"):
        Path(url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        return from_url(url)
    if url.startswith("s3://"):
        # Bounded: a store that accepts connections and never answers must not hold the cache's worker threads for
        # obstore's default of 10 retries over 3 minutes.
        return from_url(
            url,
            client_options={"allow_http": True, "connect_timeout": "5s", "timeout": "120s"},
            retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=20)},
        )
    raise ValueError(f"blob store URL must be s3://bucket[/prefix] or file:///directory, not {url!r}")
