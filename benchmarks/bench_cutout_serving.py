"""Serving a big cutout: the service's memory while it fetches (cold) and serves (warm), and warm throughput.

One run, side by side, on the same file: a 100×100-pixel, 3495-frame (sector 33, 10-min) cutout from the
emulator. The service runs as its own uvicorn process; its resident memory is sampled from /proc every 20 ms.
Warm throughput is compared with reading the cached file straight from disk.

Run: .venv/bin/python benchmarks/bench_cutout_serving.py
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._harness import service_process  # noqa: E402
from tests.fake_mast import FakeMast  # noqa: E402

PARAMS = {"ra": 63.37389, "dec": -69.226789, "size": 100, "sector": 33, "wait": 600}
CHUNK = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """Samples a process's RSS in the background; `peak` is the highest seen since the last reset."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)

    def reset(self) -> float:
        self.peak = rss_mb(self.pid)
        return self.peak

    def stop(self) -> None:
        self._stop.set()


def stream(client: httpx.Client, path: str) -> tuple[int, float, httpx.Headers]:
    start = time.perf_counter()
    size = 0
    with client.stream("GET", path, params=PARAMS) as response:
        assert response.status_code == 200, response.read()[:300]
        for chunk in response.iter_bytes(CHUNK):
            size += len(chunk)
        headers = response.headers
    return size, time.perf_counter() - start, headers


def read_from_disk(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            size += len(chunk)
    return size, time.perf_counter() - start


def main() -> None:
    with FakeMast(host="127.0.0.1", port=0) as mast, service_process(mast, cache_size_limit_mb="8192") as service:
        with httpx.Client(base_url=service.base_url, timeout=900) as client:
            client.get("/sectors", params={"ra": PARAMS["ra"], "dec": PARAMS["dec"]})
            sampler = PeakRss(service.pid)
            idle = sampler.reset()

            size, cold_s, headers = stream(client, "/cutout")
            cold_peak = sampler.peak
            assert headers["x-cache"] == "MISS"

            sampler.reset()
            warm = [stream(client, "/cutout") for _ in range(3)]
            warm_peak = sampler.peak
            assert all(h["x-cache"] == "HIT" for _, _, h in warm)
            sampler.stop()
            url = f"{service.base_url}/cutout?" + "&".join(f"{k}={v}" for k, v in PARAMS.items())
            curl = []
            for _ in range(3):
                start = time.perf_counter()
                subprocess.run(["curl", "-s", "-o", "/dev/null", url], check=True)
                curl.append(time.perf_counter() - start)
        cached_file = max(service.cache_dir.rglob("*.val"), key=lambda p: p.stat().st_size)
        disk = [read_from_disk(cached_file) for _ in range(3)]

    mb = size / 1e6
    warm_s = min(s for _, s, _ in warm)
    disk_s = min(s for _, s in disk)
    print(f"Cutout: 100x100 px, sector 33 (3495 frames), {mb:.0f} MB FITS\n")
    print(f"service RSS idle (after start-up and a sector lookup): {idle:7.0f} MB")
    print(f"service peak RSS while fetching + serving it cold     : {cold_peak:7.0f} MB  (+{cold_peak - idle:.0f} MB)")
    print(f"service peak RSS while serving it warm, 3 times       : {warm_peak:7.0f} MB  (+{warm_peak - idle:.0f} MB)")
    print(f"  -> the {mb:.0f} MB file is {'NOT ' if max(cold_peak, warm_peak) - idle < mb / 2 else ''}added to RSS\n")
    print(f"cold request (TESScut emulator + unzip + cache): {cold_s:6.2f} s")
    print(f"warm over HTTP, httpx client (best of 3): {mb / warm_s:7.0f} MB/s")
    print(f"warm over HTTP, curl client (best of 3) : {mb / min(curl):7.0f} MB/s")
    print(f"cached file read from disk (best)       : {mb / disk_s:7.0f} MB/s")
    print(f"ratio: serving (curl) runs at {disk_s / min(curl):.2f}x the speed of a plain read of the cached file")


if __name__ == "__main__":
    main()
