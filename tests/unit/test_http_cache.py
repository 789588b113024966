import pytest

from service.infra.byte_ranges import UNSATISFIABLE, ByteRange, if_range_holds, requested_range
from service.infra.cache import DiskCache, strong_etag
from service.infra.http_cache import etag_matches


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ('"abcd"', False),
        ("*", True),
    ],
)
def test_if_none_match(header, matches):
    assert etag_matches(header, '"abc"') is matches


def test_etag_is_strong_and_content_derived():
    assert strong_etag(b"a") == strong_etag(b"a") != strong_etag(b"b")
    assert strong_etag(b"a").startswith('"')


def test_cache_round_trip_small_and_large(tmp_path):
    cache = DiskCache(tmp_path, size_limit_bytes=64 * 1024 * 1024)
    small, large = b"s" * 10, bytes(range(256)) * 20_000
    cache.put("small", small, media_type="text/plain", ttl_s=60, headers={"X-A": "1"})
    cache.put("large", large, media_type="application/fits", ttl_s=60)
    got_small, got_large = cache.get("small"), cache.get("large")
    assert got_small.read() == small and got_small.meta.headers == {"X-A": "1"}
    assert got_large.file is not None, "large payloads are streamed from their file"
    assert b"".join(got_large.chunks()) == large
    assert got_large.meta.etag == strong_etag(large) and got_large.meta.size == len(large)
    assert got_small.meta.is_fresh() and 58 <= got_small.meta.max_age_s() <= 60
    assert cache.get("missing") is None
    cache.close()


def test_zero_ttl_entries_are_stale_but_kept(tmp_path):
    cache = DiskCache(tmp_path, size_limit_bytes=1024 * 1024)
    cache.put("k", b"v", media_type="text/plain", ttl_s=0)
    entry = cache.get("k")
    assert entry is not None and not entry.meta.is_fresh()
    cache.close()


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=90-", 100, (90, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-1000", 100, (0, 99)),
        ("bytes=95-1000", 100, (95, 99)),
        (" Bytes = 3-4 ", 100, (3, 4)),
        ("bytes=100-", 100, UNSATISFIABLE),
        ("bytes=100-200", 100, UNSATISFIABLE),
        ("bytes=-0", 100, UNSATISFIABLE),
        ("bytes=" + "9" * 5000 + "-", 100, UNSATISFIABLE),
        ("bytes=0-" + "9" * 5000, 100, (0, 99)),
        ("bytes=0-1,3-4", 100, None),  # several ranges: the whole
        ("bytes=5-4", 100, None),  # backwards: not a range
        ("bytes=-", 100, None),
        ("bytes=a-b", 100, None),
        ("bytes=0-1", 0, None),  # nothing to take a range of
        ("pages=0-1", 100, None),
    ],
)
def test_requested_range(header, size, expected):
    got = requested_range(header, size)
    if isinstance(expected, tuple):
        assert got == ByteRange(*expected, size)
        assert got.content_range == f"bytes {expected[0]}-{expected[1]}/{size}"
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("if_range", "holds"),
    [(None, True), ('"abc"', True), (' "abc" ', True), ('W/"abc"', False), ('"x"', False), ("Tue, 1 Jan 2030", False)],
)
def test_if_range(if_range, holds):
    assert if_range_holds(if_range, '"abc"') is holds


def test_a_range_of_a_file_backed_body_reads_only_its_bytes(tmp_path):
    cache = DiskCache(tmp_path, size_limit_bytes=64 * 1024 * 1024)
    large = bytes(range(256)) * 20_000
    cache.put("large", large, media_type="application/octet-stream", ttl_s=60)
    for first, length in ((0, 10), (1_000_001, 3_000_000), (len(large) - 5, 5)):
        body = cache.get("large")
        assert body.file is not None
        handle = body.file
        assert b"".join(body.chunks(first, length)) == large[first : first + length]
        assert handle.closed
    body = cache.get("large")
    reads = []
    original_read = body.file.read
    body.file.read = lambda n=-1: reads.append(n) or original_read(n)
    assert len(b"".join(body.chunks(2_000_000, 100))) == 100
    assert reads == [100], "one read of the range's bytes, from its offset"
    cache.close()
