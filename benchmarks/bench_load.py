"""Load: the service under wrk at 32 connections, nginx serving the same bytes, then warm and cold work together.

What it runs, all on loopback, each step bounded in time (about two minutes in all with the defaults):
  1. the MAST emulator (``python -m tests.fake_mast``) and the service (one uvicorn worker) as subprocesses;
  2. warm-up: every warm URL is fetched until cached (JSON light-curve windows, TCE lists, light-curve PNGs, GIF
     movies) and checked to answer ``X-Cache: HIT``;
  3. (a) wrk against the service: one short run per route, then one mixed run rotating over all warm URLs;
  4. (b) the same runs against nginx (one worker, ``access_log off``) serving the same bytes as static files,
     written from the service's answers; our throughput as a fraction of nginx's;
  5. (c) warm JSON + PNG/GIF under wrk while a Python client asks for cold light curves (new windows and TCEs,
     ExoMAST slowed by an emulator delay) and a few cold cutouts (TESScut slowed and throttled; 202s expected).
Errors: transport errors and timeouts, and any status but 200/202/304; a 503 in (c) is deliberate shedding and is
counted apart.

Needs: ``wrk`` and ``nginx`` on PATH (Debian: ``apt-get install -y nginx wrk``; nginx runs as this user under a
temporary prefix, and never needs its system service), the project's .venv. Targets (issue 6, a 2-core machine,
one uvicorn worker): warm >= 2,000 requests/s, p99 <= 25 ms at 32 connections, zero errors. Figures are noisy when
anything else runs on the machine: the load average is printed at the start and the end.

Run: make bench-load   (or .venv/bin/python benchmarks/bench_load.py [--duration 5] [--mixed-duration 10] ...)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import shutil
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._harness import (  # noqa: E402
    EmulatorProcess,
    free_port,
    mast_process,
    service_process,
    stop_process,
    wait_until_up,
)

NGINX_TEMPLATE = Path(__file__).resolve().parent / "nginx" / "static.conf.template"
CONNECTIONS = 32
TARGET_RPS, TARGET_P99_MS = 2000, 25.0

# The warm workload: route name -> URLs. Small JSON dominates, as it does for the clients of a data service.
LC = "/tic/{tic}/tces/{tce}/lightcurve?start={start:.2f}&end={end:.2f}&columns=TIME,LC_DETREND"
WARM_ROUTES: dict[str, list[str]] = {
    "lightcurve.json": [
        *(
            LC.format(tic=214568914, tce="s0001-s0001:TCE_1", start=1334 + k / 10, end=1334.1 + k / 10)
            for k in range(8)
        ),
        *(LC.format(tic=25155310, tce="s0001-s0001:TCE_1", start=1330 + k / 10, end=1330.1 + k / 10) for k in range(2)),
        *(
            LC.format(tic=100100827, tce="s0002-s0002:TCE_1", start=1360 + k / 10, end=1360.1 + k / 10)
            for k in range(2)
        ),
    ],
    "tces": [f"/tic/{tic}/tces" for tic in (214568914, 25155310, 100100827)],
    "lightcurve.png": [
        "/tic/214568914/tces/s0001-s0001:TCE_1/lightcurve.png",
        "/tic/214568914/tces/s0001-s0001:TCE_1/lightcurve.png?x=time&start=1333&end=1336&width=800&height=400",
    ],
    "movie.gif": [
        "/tic/214568914/movie?start=1334&end=1334.5&sector=1&size=20&scale=8",
        "/tic/214568914/movie?start=1334.5&end=1335&sector=1&size=20&scale=8",
    ],
}
# Requests of each route per round of the mixed run (JSON-heavy).
MIX_WEIGHTS = {"lightcurve.json": 12, "tces": 6, "lightcurve.png": 2, "movie.gif": 2}
# Connections per warm route in run (c); they add up to CONNECTIONS.
COLD_RUN_SPLIT = {"lightcurve.json": 16, "tces": 6, "lightcurve.png": 5, "movie.gif": 5}
# Cold work in run (c): every TCE the emulator has (so the first window of each reaches ExoMAST), new windows each.
COLD_TCES = [
    (214568914, "s0001-s0001:TCE_1", 1326.0),
    (25155310, "s0001-s0001:TCE_1", 1326.0),
    *((100100827, f"s000{s}-s000{s}:TCE_1", start) for s, start in ((1, 1326.0), (2, 1355.0), (3, 1386.5))),
    (100100827, "s0001-s0003:TCE_1", 1326.0),
    (100100827, "s0001-s0003:TCE_2", 1356.0),
    (100100827, "s0002-s0002:TCE_2", 1355.0),
]
COLD_CUTOUTS = [(107.27 + 0.02 * k, -70.0, 1) for k in range(2)] + [
    (63.37389 + 0.02 * k, -69.226789, 2) for k in range(2)
]
EXOMAST_TABLE_DELAY_S = 0.3
TESSCUT_DELAY_S, TESSCUT_BYTES_PER_S = 1.0, 400_000

# wrk's Lua side: rotate over the URLs, optionally count statuses, print one JSON line at the end.
WRK_LUA = string.Template(r"""
local paths = {$paths}
local i = 0
statuses = {}
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i - 1) % #paths + 1])
end
$response
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do counts[#counts + 1] = '"' .. status .. '":' .. n end
  end
  local e = summary.errors
  io.write(string.format(
    '\nWRK-JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, table.concat(counts, ",")))
end
""")
COUNT_STATUSES = "response = function(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end"


@dataclass(frozen=True)
class Server:
    """Where to send requests, and whose CPU time to count."""

    url: str
    pid: int


@dataclass
class RouteResult:
    """One route's figures in one run."""

    run: str
    route: str
    connections: int
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    mean_bytes: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    shed: int = 0
    cpu_s: float = 0.0  # CPU time the server used during the run, all its threads and worker processes

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / self.requests * 1e6 if self.requests else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


# ---------------------------------------------------------------------------------------------------------------
# wrk


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children processes (nginx's worker), from /proc."""
    pids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            pids.append(int(stat.parent.name))
    total = 0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def start_wrk(
    base_url: str, paths: list[str], connections: int, duration_s: float, workdir: Path, count_statuses: bool
) -> subprocess.Popen[str]:
    script = workdir / f"wrk-{hashlib.sha1(''.join(paths).encode()).hexdigest()[:10]}-{connections}.lua"
    script.write_text(
        WRK_LUA.substitute(
            paths=", ".join(json.dumps(path) for path in paths), response=COUNT_STATUSES if count_statuses else ""
        )
    )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s:g}s", "--timeout", "5s", "-s", str(script), base_url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_wrk(process: subprocess.Popen[str], run: str, route: str, connections: int) -> RouteResult:
    output, _ = process.communicate(timeout=600)
    line = next((line for line in output.splitlines() if line.startswith("WRK-JSON ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    data = json.loads(line.removeprefix("WRK-JSON "))
    statuses = Counter({int(status): n for status, n in data["statuses"].items()})
    shed = statuses.pop(503, 0) if statuses else 0
    unexpected = sum(n for status, n in statuses.items() if status not in (200, 202, 304))
    transport = data["connect"] + data["read"] + data["write"] + data["timeout"]
    # Without status counting, wrk's own count of statuses >= 400 stands in.
    errors = transport + (unexpected if statuses else data["status"])
    return RouteResult(
        run, route, connections, data["requests"], data["duration_us"] / 1e6, data["p50_us"] / 1000,
        data["p99_us"] / 1000, data["max_us"] / 1000, errors, data["bytes"] / max(1, data["requests"]), statuses, shed,
    )  # fmt: skip


def run_wrk(
    server: Server, paths: list[str], connections: int, duration_s: float, workdir: Path, run: str, route: str
) -> RouteResult:
    cpu_before = cpu_seconds(server.pid)
    process = start_wrk(server.url, paths, connections, duration_s, workdir, count_statuses=False)
    result = finish_wrk(process, run, route, connections)
    result.cpu_s = cpu_seconds(server.pid) - cpu_before
    return result


def mixed_paths(routes: dict[str, list[str]], rounds: int = 24) -> list[str]:
    """The mixed workload: rounds of each route's next URLs, as many as its weight."""
    cycles = {name: itertools.cycle(routes[name]) for name in MIX_WEIGHTS}
    return [next(cycles[name]) for _ in range(rounds) for name, weight in MIX_WEIGHTS.items() for _ in range(weight)]


def warm_runs(
    server: Server, routes: dict[str, list[str]], run: str, duration_s: float, mixed_s: float, workdir: Path
) -> list[RouteResult]:
    results = [run_wrk(server, urls, CONNECTIONS, duration_s, workdir, run, name) for name, urls in routes.items()]
    results.append(run_wrk(server, mixed_paths(routes), CONNECTIONS, mixed_s, workdir, run, "mixed"))
    return results


# ---------------------------------------------------------------------------------------------------------------
# Warm-up, nginx


def warm_up(client: httpx.Client) -> dict[str, list[tuple[str, bytes]]]:
    """Fetch every warm URL until it is cached; return each route's (media type, body) pairs in URL order."""
    bodies: dict[str, list[tuple[str, bytes]]] = {}
    for name, urls in WARM_ROUTES.items():
        for url in urls:
            response = client.get(url)  # a movie's cutout may take a while: the request waits for its job
            for _ in range(60):
                if response.status_code != 202:
                    break
                time.sleep(1)
                response = client.get(url)
            response.raise_for_status()
            again = client.get(url)
            if again.headers.get("x-cache") != "HIT" or again.content != response.content:
                raise RuntimeError(f"{url} is not served warm: X-Cache {again.headers.get('x-cache')}")
            media_type = again.headers["content-type"].split(";")[0]
            bodies.setdefault(name, []).append((media_type, again.content))
    return bodies


EXTENSIONS = {"application/json": "json", "image/png": "png", "image/gif": "gif", "text/csv": "csv"}


def write_docroot(docroot: Path, bodies: dict[str, list[tuple[str, bytes]]]) -> dict[str, list[str]]:
    """Write the same bytes as static files; return each route's static URLs, in the same order."""
    routes: dict[str, list[str]] = {}
    for name, entries in bodies.items():
        (docroot / name).mkdir(parents=True, exist_ok=True)
        for index, (media_type, body) in enumerate(entries):
            path = docroot / name / f"{index}.{EXTENSIONS.get(media_type, 'bin')}"
            path.write_bytes(body)
            routes.setdefault(name, []).append("/" + path.relative_to(docroot).as_posix())
    return routes


@contextmanager
def nginx_running(template: Path, prefix: Path, ready_path: str, **values: object) -> Iterator[Server]:
    """nginx configured from ``template`` (``$prefix``, a free ``$port`` and ``values``) under ``prefix``, on loopback.

    Yields once ``ready_path`` answers; stops nginx when the block ends.
    """
    port = free_port()
    config = prefix / "nginx.conf"
    config.write_text(string.Template(template.read_text()).substitute(prefix=prefix, port=port, **values))
    process = subprocess.Popen(
        ["nginx", "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + ready_path, process, "nginx")
        yield Server(url, process.pid)
    finally:
        stop_process(process)


@contextmanager
def nginx_static(docroot: Path, workdir: Path) -> Iterator[Server]:
    """nginx (one worker) serving ``docroot`` on a free loopback port, under a temporary prefix."""
    prefix = workdir / "nginx"
    prefix.mkdir()
    # As root, nginx's worker runs as an unprivileged user: it must be able to read the files.
    for path in (workdir, docroot, *docroot.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    with nginx_running(NGINX_TEMPLATE, prefix, "/", docroot=docroot) as server:
        yield server


# ---------------------------------------------------------------------------------------------------------------
# Run (c): warm under wrk, cold from a Python client


@dataclass
class ColdTally:
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[int | str]] = field(default_factory=dict)

    def record(self, route: str, started: float, status: int | str) -> None:
        self.latencies_ms.setdefault(route, []).append((time.perf_counter() - started) * 1000)
        self.statuses.setdefault(route, Counter())[status] += 1


async def cold_lightcurves(client: httpx.AsyncClient, tally: ColdTally, stop_at: float, worker: int) -> None:
    """Ask for light-curve windows nobody asked for before, cycling over every TCE."""
    k = 0
    while time.monotonic() < stop_at:
        tic, tce, first = COLD_TCES[(worker + k) % len(COLD_TCES)]
        start = first + 0.37 * worker + 0.013 * k  # distinct per worker and per request: always a miss
        url = f"/tic/{tic}/tces/{tce}/lightcurve?start={start:.3f}&end={start + 0.5:.3f}"
        started = time.perf_counter()
        try:
            response = await client.get(url)
            tally.record("cold lightcurve", started, response.status_code)
        except httpx.HTTPError as error:
            tally.record("cold lightcurve", started, type(error).__name__)
        k += 1


async def cold_cutout(client: httpx.AsyncClient, tally: ColdTally, ra: float, dec: float, sector: int) -> None:
    """Ask for a cutout nobody asked for before, wait briefly, then poll its job (bounded)."""
    started = time.perf_counter()
    try:
        response = await client.get(f"/cutout?ra={ra:.5f}&dec={dec:.6f}&sector={sector}&size=10&format=json&wait=1")
        tally.record("cold cutout", started, response.status_code)
        if response.status_code == 202:
            location = response.headers["location"]
            status: int | str = "unfinished"
            for _ in range(60):
                await asyncio.sleep(0.5)
                poll_started = time.perf_counter()
                job = await client.get(location)
                tally.record("job poll", poll_started, job.status_code)
                if job.status_code != 200 or job.json()["status"] in ("done", "failed"):
                    status = job.json()["status"] if job.status_code == 200 else job.status_code
                    break
            tally.record("cutout job", started, status)
    except httpx.HTTPError as error:
        tally.record("cold cutout", started, type(error).__name__)


async def cold_traffic(base_url: str, duration_s: float) -> ColdTally:
    tally = ColdTally()
    stop_at = time.monotonic() + duration_s
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        await asyncio.gather(
            *(cold_lightcurves(client, tally, stop_at, worker) for worker in range(3)),
            *(cold_cutout(client, tally, ra, dec, sector) for ra, dec, sector in COLD_CUTOUTS),
        )
    return tally


def cold_results(tally: ColdTally, run: str, duration_s: float) -> list[RouteResult]:
    results = []
    for route, samples in tally.latencies_ms.items():
        statuses = tally.statuses[route]
        shed = statuses.get(503, 0)
        ok = ("done",) if route == "cutout job" else (200, 202, 304)
        errors = sum(n for status, n in statuses.items() if status not in ok and status != 503)
        results.append(
            RouteResult(
                run,
                route,
                0,
                len(samples),
                duration_s,
                float(np.percentile(samples, 50)),
                float(np.percentile(samples, 99)),
                max(samples),
                errors,
                0.0,
                Counter(statuses),
                shed,
            )  # fmt: skip
        )
    return results


def mixed_cold_run(base_url: str, mast: EmulatorProcess, duration_s: float, workdir: Path) -> list[RouteResult]:
    mast.set_fault("/api/v0.1/dvdata/tess/*/table/", delay_s=EXOMAST_TABLE_DELAY_S)
    mast.set_fault("/tesscut/api/v0.1/astrocut", delay_s=TESSCUT_DELAY_S, throttle_bytes_per_s=TESSCUT_BYTES_PER_S)
    processes = {
        name: start_wrk(base_url, WARM_ROUTES[name], conns, duration_s, workdir, count_statuses=True)
        for name, conns in COLD_RUN_SPLIT.items()
    }
    holder: dict[str, ColdTally] = {}
    thread = threading.Thread(
        target=lambda: holder.setdefault("tally", asyncio.run(cold_traffic(base_url, duration_s)))
    )
    thread.start()
    results = [finish_wrk(process, "c", f"warm {name}", COLD_RUN_SPLIT[name]) for name, process in processes.items()]
    thread.join(120)
    mast.clear_faults()
    return results + cold_results(holder["tally"], "c", duration_s)


# ---------------------------------------------------------------------------------------------------------------
# Report


def print_table(title: str, results: list[RouteResult], nginx: dict[str, RouteResult] | None = None) -> None:
    print(f"\n{title}")
    header = f"{'route':<22}{'conns':>6}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    header += f"{'errors':>8}{'KiB/resp':>10}{'CPU us/req':>12}"
    header += f"{'nginx req/s':>13}{'of nginx':>10}" if nginx else f"{'shed 503':>10}  statuses"
    print(header)
    print("-" * len(header))
    for r in results:
        line = f"{r.route:<22}{r.connections or '':>6}{r.requests:>10}{r.rps:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
        line += f"{r.max_ms:>9.1f}{r.errors:>8}{r.mean_bytes / 1024:>10.1f}"
        line += f"{r.cpu_us_per_request:>12.0f}" if r.cpu_s else f"{'':>12}"
        if nginx:
            theirs = nginx[r.route]
            line += f"{theirs.rps:>13.0f}{r.rps / theirs.rps:>10.2f}"
        else:
            line += f"{r.shed:>10}  " + " ".join(f"{s}:{n}" for s, n in sorted(r.statuses.items(), key=str))
        print(line)


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5, help="seconds of each per-route wrk run")
    parser.add_argument("--mixed-duration", type=float, default=10, help="seconds of the mixed warm run")
    parser.add_argument("--cold-duration", type=float, default=15, help="seconds of run (c)")
    parser.add_argument("--skip-nginx", action="store_true")
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--uvicorn-arg", action="append", default=[], help="extra uvicorn option, e.g. --http=h11")
    parser.add_argument("--service-root", type=Path, default=ROOT, help="run the service from this tree")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"{tool} is not on PATH: apt-get install -y nginx wrk", file=sys.stderr)
            return 2

    print(f"load average at start: {load()} ({os.cpu_count()} CPUs)")
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-load-")))
        mast = stack.enter_context(mast_process())
        service = stack.enter_context(
            service_process(mast, uvicorn_args=args.uvicorn_arg, root=args.service_root, cache_size_limit_mb="4096")
        )
        started = time.monotonic()
        with httpx.Client(base_url=service.base_url, timeout=120) as client:
            bodies = warm_up(client)
        sizes = ", ".join(
            f"{name} {len(entries)} x {np.mean([len(b) for _, b in entries]) / 1024:.1f} KiB"
            for name, entries in bodies.items()
        )
        print(f"warm-up: {time.monotonic() - started:.1f} s; cached answers: {sizes}")

        ours = warm_runs(
            Server(service.base_url, service.pid), WARM_ROUTES, "a", args.duration, args.mixed_duration, workdir
        )
        nginx_results: dict[str, RouteResult] | None = None
        if not args.skip_nginx:
            docroot = workdir / "docroot"
            static_routes = write_docroot(docroot, bodies)
            with nginx_static(docroot, workdir) as nginx:
                theirs = warm_runs(nginx, static_routes, "b", args.duration, args.mixed_duration, workdir)
            nginx_results = {r.route: r for r in theirs}
        print_table(f"(a) warm, the service (one uvicorn worker), {CONNECTIONS} connections", ours, nginx_results)
        if nginx_results:
            print_table("(b) warm, nginx (one worker) serving the same bytes as static files", list(theirs))

        cold: list[RouteResult] = []
        if not args.skip_cold:
            cold = mixed_cold_run(service.base_url, mast, args.cold_duration, workdir)
            print_table(
                f"(c) warm under wrk + cold from Python, ExoMAST tables +{EXOMAST_TABLE_DELAY_S} s, TESScut "
                f"+{TESSCUT_DELAY_S} s at {TESSCUT_BYTES_PER_S / 1000:.0f} kB/s",
                cold,
            )
            counters = mast.counters()["endpoints"]
            print(f"emulator requests during the whole bench: {dict(sorted(counters.items()))}")

    mixed = next(r for r in ours if r.route == "mixed")
    total_errors = sum(r.errors for r in ours) + sum(r.errors for r in cold)
    verdict = mixed.rps >= TARGET_RPS and mixed.p99_ms <= TARGET_P99_MS and total_errors == 0
    print(
        f"\nsummary: warm mixed {mixed.rps:,.0f} req/s (target >= {TARGET_RPS:,}), p99 {mixed.p99_ms:.1f} ms "
        f"(target <= {TARGET_P99_MS:.0f}), errors in all runs {total_errors} (target 0): "
        + ("MEETS the targets" if verdict else "MISSES the targets")
    )
    if nginx_results:
        print(f"warm mixed throughput as a fraction of nginx's: {mixed.rps / nginx_results['mixed'].rps:.2f}")
    print(f"load average at end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
