"""Large cached answers at the framework's speed: a cached movie over 1 MiB, served by the service, next to a bare
FastAPI app serving the same bytes from memory.

wrk at 32 connections against each, in turns (bare, service, service without its memory tier), ROUNDS runs of
DURATION_S each, every server a uvicorn process of its own with one worker on this machine. Prints requests per
second, MiB/s and p99 per row, and each row's ratio to the bare app.

Run: .venv/bin/python benchmarks/bench_large_answers.py   (needs wrk: apt-get install -y wrk)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._harness import free_port, mast_process, server_process, service_process  # noqa: E402
from benchmarks.bench_load import finish_wrk, start_wrk  # noqa: E402

MOVIE = "/tic/214568914/movie?start=1334&end=1336&scale=6"
CONNECTIONS = 32
DURATION_S = 8.0
ROUNDS = 3
MIB = 1024 * 1024

BARE_APP = """
import os
from fastapi import FastAPI
from fastapi.responses import Response

BODY = open(os.environ["BENCH_BODY"], "rb").read()
app = FastAPI()


@app.get("/movie")
async def movie() -> Response:
    return Response(BODY, media_type="image/gif", headers={"ETag": '"bench"', "Cache-Control": "public, max-age=60"})
"""


@dataclass
class Server:
    url: str
    pid: int


@contextmanager
def bare_app(body: bytes, workdir: Path) -> Iterator[Server]:
    """A FastAPI app answering ``body`` from memory at /movie, under uvicorn (one worker), like the service."""
    (workdir / "bare_app.py").write_text(BARE_APP)
    (workdir / "body.bin").write_bytes(body)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--log-level", "warning"]
    env = {"BENCH_BODY": str(workdir / "body.bin"), "PATH": str(Path(sys.executable).parent)}
    url = f"http://127.0.0.1:{port}"
    with server_process(command, f"{url}/movie", "the bare app", cwd=workdir, env=env) as process:
        yield Server(url, process.pid)


def cached_movie(base_url: str) -> bytes:
    """Make the movie (following its job) and return its bytes, now cached."""
    with httpx.Client(base_url=base_url, timeout=300) as client:
        deadline = time.monotonic() + 300
        while (answer := client.get(MOVIE + "&wait=60")).status_code == 202 and time.monotonic() < deadline:
            time.sleep(0.5)
        answer.raise_for_status()
        again = client.get(MOVIE)
        assert again.headers.get("x-cache") == "HIT", again.headers
        return again.content


def main() -> None:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-large-")))
        mast = stack.enter_context(mast_process())
        service = stack.enter_context(service_process(mast))
        cold = stack.enter_context(service_process(mast, edge_cache_mb="0"))
        body = cached_movie(service.base_url)
        assert cached_movie(cold.base_url) == body
        assert len(body) > MIB, f"the movie is {len(body)} bytes; the benchmark wants one over 1 MiB"
        bare = stack.enter_context(bare_app(body, workdir))
        servers = {
            "bare FastAPI, bytes in memory": (Server(bare.url, bare.pid), "/movie"),
            "service (default tiers)": (Server(service.base_url, service.pid), MOVIE),
            "service, edge tier off": (Server(cold.base_url, cold.pid), MOVIE),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
        for _ in range(ROUNDS):
            for name, (server, path) in servers.items():
                run = finish_wrk(start_wrk(server.url, [path], CONNECTIONS, DURATION_S, workdir, False), "", name, 32)
                assert run.errors == 0, f"{name}: {run.errors} errors"
                results[name].append((run.rps, run.p99_ms))
    print(f"cached movie: {len(body) / MIB:.2f} MiB; wrk -c{CONNECTIONS}, {ROUNDS} x {DURATION_S:g} s each, in turns")
    bare_rps = statistics.median(rps for rps, _ in results["bare FastAPI, bytes in memory"])
    print(f"{'server':34} {'req/s':>8} {'MiB/s':>8} {'p99 ms':>8} {'vs bare':>8}")
    for name, runs in results.items():
        rps = statistics.median(r for r, _ in runs)
        p99 = statistics.median(p for _, p in runs)
        print(f"{name:34} {rps:8.0f} {rps * len(body) / MIB:8.0f} {p99:8.1f} {rps / bare_rps:8.0%}")


if __name__ == "__main__":
    main()
