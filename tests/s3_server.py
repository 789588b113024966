"""A real S3-compatible server on loopback for the shared tier's tests: moto's (`moto_server`, from PyPI).

moto speaks S3's wire protocol (multipart uploads, ranges) and keeps objects in memory, which suits tests of a few
MB. The service reaches it the way it reaches any S3: `s3://bucket/prefix` and the usual AWS_* variables.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.polling import wait_until
from tests.service_process import free_port


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """The AWS_* variables that point a client at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }


def _answers(endpoint: str, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "moto_server exited at start"
    try:
        httpx.get(endpoint, timeout=1)
    except httpx.TransportError:
        return False
    return True


@contextmanager
def s3_server(bucket: str = "tess-cache") -> Iterator[S3Server]:
    """Run moto's S3 server with one empty bucket while the block runs."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _answers(endpoint, process), 30, what="moto_server to answer", interval_s=0.05)
        assert httpx.put(f"{endpoint}/{bucket}", timeout=10).status_code == 200
        yield S3Server(endpoint, bucket)
    finally:
        process.terminate()
        process.wait(timeout=10)
