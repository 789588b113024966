"""The disk cache checks bytes against their checksum before serving, sweeps crash leftovers, and holds its limit."""

import os
import sqlite3
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from service.infra.cache import INLINE_MAX_BYTES, READ_WHOLE_MAX_BYTES, DiskCache

MIB = 1024 * 1024


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def value_file(cache: DiskCache, key: str) -> Path:
    with sqlite3.connect(cache.directory / "cache.db") as db:
        ((name,),) = db.execute("SELECT filename FROM Cache WHERE key = ?", (key,)).fetchall()
    return cache.directory / name


def flip_byte(path: Path, offset: int, *, keep_mtime: bool = False) -> None:
    stat = path.stat()
    with path.open("r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0xFF]))
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def disk_usage(directory: Path) -> int:
    """Bytes the directory takes on disk (allocated blocks, as du counts them), the database and its WAL included."""
    return sum(p.lstat().st_blocks * 512 for p in directory.rglob("*"))


@pytest.fixture
def cache(tmp_path):
    opened = DiskCache(tmp_path / "c", size_limit_bytes=64 * MIB)
    yield opened
    opened.close()


def test_a_corrupt_inline_entry_is_dropped(cache):
    cache.put("k", b"small payload", media_type="text/plain", ttl_s=60)
    with sqlite3.connect(cache.directory / "cache.db") as db:
        db.execute("UPDATE Cache SET value = ? WHERE key = ?", (b"small pAyload", "k"))
    corrupt = counter("tess_cache_corrupt_total")
    assert cache.get("k") is None
    assert counter("tess_cache_corrupt_total") == corrupt + 1
    assert len(cache) == 0, "the entry is gone, so the next request produces it again"


@pytest.mark.parametrize(
    "size", [INLINE_MAX_BYTES + 10, READ_WHOLE_MAX_BYTES + 10], ids=["read-whole-file", "streamed-file"]
)
def test_a_corrupt_file_is_dropped_even_after_it_was_checked(cache, tmp_path, size):
    payload = os.urandom(size)
    source = tmp_path / "source.bin"
    source.write_bytes(payload)
    cache.put_file("k", source, media_type="application/fits", ttl_s=60)
    assert cache.get("k").read() == payload  # checked (and remembered as checked)
    flip_byte(value_file(cache, "k"), size - 1)  # the last byte: a streamed body is checked before its first
    corrupt = counter("tess_cache_corrupt_total")
    assert cache.get("k") is None
    assert counter("tess_cache_corrupt_total") == corrupt + 1
    assert len(cache) == 0 and not list(cache.directory.glob("??/??/*.val"))


def test_a_truncated_file_is_dropped_without_reading_it(cache):
    payload = os.urandom(2 * READ_WHOLE_MAX_BYTES)
    cache.put("k", payload, media_type="application/fits", ttl_s=60)
    os.truncate(value_file(cache, "k"), READ_WHOLE_MAX_BYTES)
    assert cache.get("k") is None


def test_a_file_is_checked_again_after_a_restart(tmp_path):
    """The trade-off: a file rewritten with its mtime put back is caught only by the next process."""
    payload = os.urandom(READ_WHOLE_MAX_BYTES + 10)
    first = DiskCache(tmp_path / "c", size_limit_bytes=64 * MIB)
    first.put("k", payload, media_type="application/fits", ttl_s=60)
    assert b"".join(first.get("k").chunks()) == payload
    flip_byte(value_file(first, "k"), 0, keep_mtime=True)
    body = first.get("k")
    assert body is not None, "same size, mtime and inode: this process trusts its earlier check"
    body.close()
    first.close()
    restarted = DiskCache(tmp_path / "c", size_limit_bytes=64 * MIB)
    assert restarted.get("k") is None
    restarted.close()


def test_sweep_removes_orphan_files_and_dangling_rows(cache):
    cache.put("kept", os.urandom(INLINE_MAX_BYTES * 2), media_type="application/fits", ttl_s=60)
    cache.put("lost", os.urandom(INLINE_MAX_BYTES * 2), media_type="application/fits", ttl_s=60)
    value_file(cache, "lost").unlink()  # its row now points at nothing
    orphan = cache.directory / "ab" / "cd" / "0123456789abcdef0123456789ab.val"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"half a copy")  # a copy interrupted before its row was committed
    assert cache.sweep() == (1, 1)
    assert not orphan.exists()
    assert cache.get("kept") is not None and len(cache) == 1


def test_size_limit_holds_when_one_write_outgrows_ten_culls(tmp_path):
    """diskcache culls at most ten entries per write: one large file after many small ones overshoots it."""
    limit = 8 * MIB
    cache = DiskCache(tmp_path / "c", size_limit_bytes=limit)
    for index in range(100):
        cache.put(f"small{index}", os.urandom(INLINE_MAX_BYTES + 1024), media_type="x/y", ttl_s=60)
    evictions = counter("tess_cache_evictions_total")
    cache.put("large", os.urandom(6 * MIB), media_type="x/y", ttl_s=60)
    assert cache.volume_bytes() <= limit
    assert disk_usage(cache.directory) <= limit * 1.05  # the WAL is within the limit; files round up to blocks
    assert counter("tess_cache_evictions_total") - evictions > 10
    large = cache.get("large")
    assert large is not None, "the least recently stored went first"
    large.close()
    assert REGISTRY.get_sample_value("tess_cache_volume_bytes") == cache.volume_bytes()
    cache.close()


def test_size_limit_holds_under_churn(tmp_path):
    limit = 4 * MIB
    cache = DiskCache(tmp_path / "c", size_limit_bytes=limit)
    sizes = [100, 40_000, 70_000, 300_000, 1_200_000]
    most = 0
    for index in range(150):
        cache.put(f"k{index}", os.urandom(sizes[index % len(sizes)]), media_type="x/y", ttl_s=60)
        assert cache.volume_bytes() <= limit
        most = max(most, disk_usage(cache.directory))
    assert most <= limit * 1.05
    newest = cache.get("k149")
    assert newest is not None and len(newest.read()) == sizes[149 % len(sizes)]
    cache.close()
