"""Warm throughput with two replicas behind nginx, next to one replica behind the same nginx, in one run.

What it runs, all on loopback: the MAST emulator, a cache Redis (Debian's redis-server), two service processes
sharing it (the shared cache tier, TESS_SERVICE_CACHE_REDIS_URL, with a file:// object store), and nginx (one
worker, keep-alive to the upstreams). The warm URLs of bench_load (JSON windows, TCE lists, PNGs) are fetched once
through one replica, so the other finds them in the shared tier; then wrk (32 connections) runs the mixed warm
workload through nginx to one replica, then to both, alternating for ``--rounds`` rounds; medians are printed with
the ratio. On a 2-core machine wrk, nginx and the replicas share the cores: the ratio says what a second replica buys
on one host (little: the cores are the limit); across hosts each replica brings its own.

Needs wrk, nginx and redis-server on PATH (Debian: apt-get install -y nginx wrk redis-server).
Run: .venv/bin/python benchmarks/bench_replicas.py [--duration 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._harness import mast_process, service_process  # noqa: E402
from benchmarks.bench_load import (  # noqa: E402
    CONNECTIONS,
    WARM_ROUTES,
    Server,
    finish_wrk,
    nginx_running,
    start_wrk,
)
from tests.redis_server import RedisServer  # noqa: E402

PROXY_TEMPLATE = Path(__file__).resolve().parent / "nginx" / "proxy.conf.template"
# JSON-heavy, as bench_load's mix; movies left out (their cutouts are slow to make and not what this measures).
MIXED = [url for name in ("lightcurve.json", "tces", "lightcurve.png") for url in WARM_ROUTES[name]]


@contextmanager
def nginx_proxy(upstreams: list[str], workdir: Path) -> Iterator[Server]:
    prefix = Path(tempfile.mkdtemp(prefix="nginx-", dir=workdir))
    servers = "\n".join(f"        server {url.removeprefix('http://')};" for url in upstreams)
    with nginx_running(PROXY_TEMPLATE, prefix, "/health", servers=servers) as server:
        yield server


def warm(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for url in MIXED:
            answer = client.get(url)
            assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of one and two replicas")
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"needs {tool} on PATH (apt-get install -y nginx wrk redis-server)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with ExitStack() as stack:
        mast = stack.enter_context(mast_process())
        redis = RedisServer(workdir)
        redis.start()
        stack.callback(redis.stop)
        shared = {"cache_redis_url": redis.url, "blob_store_url": f"file://{workdir / 'blobs'}"}
        replicas = [stack.enter_context(service_process(mast, **shared)) for _ in range(2)]
        warm(replicas[0].base_url)
        warm(replicas[1].base_url)  # from the shared tier, onto the second replica's disk
        one = stack.enter_context(nginx_proxy([replicas[0].base_url], workdir))
        two = stack.enter_context(nginx_proxy([r.base_url for r in replicas], workdir))
        rates: dict[str, list[float]] = {"one replica": [], "two replicas": []}
        p99s: dict[str, list[float]] = {"one replica": [], "two replicas": []}
        for _ in range(args.rounds):
            for name, proxy in (("one replica", one), ("two replicas", two)):
                result = finish_wrk(
                    start_wrk(proxy.url, MIXED, CONNECTIONS, args.duration, workdir, count_statuses=True),
                    name,
                    "mixed",
                    CONNECTIONS,
                )
                assert result.errors == 0, f"{result.errors} errors behind nginx ({name})"
                rates[name].append(result.requests / result.duration_s)
                p99s[name].append(result.p99_ms)
    shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\nwarm mixed workload through nginx, wrk -c{CONNECTIONS}, {args.rounds} x {args.duration:g} s each, medians"
    )
    for name in rates:
        print(f"  {name:13s} {statistics.median(rates[name]):8.0f} req/s   p99 {statistics.median(p99s[name]):6.1f} ms")
    ratio = statistics.median(rates["two replicas"]) / statistics.median(rates["one replica"])
    print(f"  two / one: {ratio:.2f}x")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
