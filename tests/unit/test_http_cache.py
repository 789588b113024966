import pytest

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
