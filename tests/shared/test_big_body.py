"""A 700 MB cutout through the object store (moto's S3 server): each replica's memory stays far below its size."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redis_server import redis_server
from tests.s3_server import s3_server

pytestmark = [pytest.mark.process, pytest.mark.slow]

MIB = 1024 * 1024
SIZE = 700 * MIB
ROOT = Path(__file__).resolve().parents[2]


def replica(
    action: str, key: str, file: Path, cache_dir: Path, redis_url: str, blob_url: str, env: dict[str, str]
) -> dict[str, float | str]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.shared.big_body", action, key, str(file), str(cache_dir), redis_url, blob_url],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_700_mb_body_crosses_replicas_in_bounded_memory(tmp_path: Path) -> None:
    source = tmp_path / "cutout.fits"
    digest = hashlib.sha256()
    block = os.urandom(MIB)
    with source.open("wb") as out:
        for n in range(SIZE // MIB):
            chunk = block[n % 997 :] + block[: n % 997]  # 700 different MiB without 700 MB of randomness
            digest.update(chunk)
            out.write(chunk)
    with redis_server(tmp_path) as redis, s3_server() as s3:
        blob_url = f"s3://{s3.bucket}/cache"
        wrote = replica("write", "cutout:big", source, tmp_path / "a", redis.url, blob_url, s3.env)
        read = replica("read", "cutout:big", source, tmp_path / "b", redis.url, blob_url, s3.env)
    assert read["sha256"] == digest.hexdigest()
    # Far below the body's 700 MiB: streamed in parts both ways (obstore's 5 MB parts, 1 MiB chunks here).
    assert float(wrote["rss_growth_mib"]) < 100, wrote
    assert float(read["rss_growth_mib"]) < 100, read
