"""A real `redis-server` (Debian's; .ci/run installs it) on loopback, started and stopped by a test fixture.

Started as the scale-out notes advise for a cache instance (no RDB snapshots, no AOF) or, ``persistent``, for a
state store (AOF, noeviction). `stop` and `start` again on
the same port stand for an outage and a recovery.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.polling import wait_until
from tests.service_process import free_port


class RedisServer:
    """One redis-server process on 127.0.0.1:``port``, its files under ``directory``."""

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        assert shutil.which("redis-server"), "these tests need Debian's redis-server (apt-get install redis-server)"
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None
        # A state store: every write in the append-only file, nothing ever evicted (the notes in scale-out.md).
        self._persistence = (
            ["--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction"]
            if persistent
            else ["--appendonly", "no"]
        )

    def start(self) -> None:
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--dir",
                   str(self.directory), "--protected-mode", "no", *self._persistence]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        wait_until(lambda: self._answers(client), 10, what="redis-server to answer PING", interval_s=0.02)
        client.close()

    def _answers(self, client: redis.Redis) -> bool:
        assert self._process is not None and self._process.poll() is None, "redis-server exited at start"
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)


@contextmanager
def redis_server(directory: Path, *, persistent: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(directory, persistent=persistent)
    server.start()
    try:
        yield server
    finally:
        server.stop()
