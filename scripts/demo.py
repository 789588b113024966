"""``make demo``: the MAST emulator on :8001, the service on :8000 pointed at it, example curls; Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MAST_PORT = int(os.environ.get("DEMO_MAST_PORT", "8001"))
SERVICE_PORT = int(os.environ.get("DEMO_SERVICE_PORT", "8000"))
SERVICE = f"http://{HOST}:{SERVICE_PORT}"

EXAMPLES = [
    (
        "Explore in the browser: TCEs, the light curve, its events, a window's movie and diagnosis",
        f"open {SERVICE}/explore/214568914",
    ),
    ("List the TCEs of the 'weird' target", f"curl -s {SERVICE}/tic/214568914/tces"),
    ("Summarise its TCE", f"curl -s '{SERVICE}/tic/214568914/tces/s0001-s0001:TCE_1'"),
    (
        "One day of its DV light curve around the dip, as JSON",
        f"curl -s '{SERVICE}/tic/214568914/tces/TCE_1/lightcurve?columns=TIME,LC_DETREND&start=1334&end=1335'",
    ),
    (
        "The whole light curve as CSV, then as FITS",
        f"curl -s -OJ '{SERVICE}/tic/214568914/tces/TCE_1/lightcurve?format=csv'\n"
        f"  curl -s -OJ -H 'Accept: application/fits' '{SERVICE}/tic/214568914/tces/TCE_1/lightcurve'",
    ),
    ("Ask twice and watch X-Cache go MISS -> HIT", f"curl -sI {SERVICE}/tic/100100827/tces | grep -i x-cache"),
    ("The sectors that observed it (TESScut)", f"curl -s {SERVICE}/tic/214568914/sectors"),
    (
        "Its 50x50 FFI cutout for sector 1: a summary, then the target pixel file",
        f"curl -s '{SERVICE}/tic/214568914/cutout?sector=1&format=json'\n"
        f"  curl -s -OJ '{SERVICE}/tic/214568914/cutout?sector=1'",
    ),
    (
        "Where is the weirdness? The events of its light curve, and whether its transits repeat",
        f"curl -s '{SERVICE}/tic/214568914/tces/TCE_1/events'",
    ),
    (
        "Plot the light curve (phase-folded, then against time with the anomaly shaded)",
        f"curl -s -o lc-phase.png '{SERVICE}/tic/214568914/tces/TCE_1/lightcurve.png'\n"
        f"  curl -s -o lc-time.png '{SERVICE}/tic/214568914/tces/TCE_1/lightcurve.png?x=time&highlight=1334,1335'",
    ),
    (
        "Watch the pixels during the dip: a movie of BTJD 1334-1335 (and one frame as PNG)",
        f"curl -s -o m.gif '{SERVICE}/tic/214568914/movie?start=1334&end=1335'\n"
        f"  curl -s -o f.png '{SERVICE}/tic/214568914/frame.png?time=1334.45'",
    ),
    (
        "Any star has a light curve from its FFI cutout (this one has no TCE); the weird target's shows a bump",
        f"curl -s '{SERVICE}/tic/206462606/ffi-lightcurve?format=csv' | head -3\n"
        f"  curl -s '{SERVICE}/tic/214568914/ffi-lightcurve/events?max_events=1'",
    ),
    (
        "What caused the dip? The diagnosis names the asteroid; its picture and the pixels' light curves",
        f"curl -s '{SERVICE}/tic/214568914/diagnosis?start=1334&end=1335'\n"
        f"  curl -s -o d.png '{SERVICE}/tic/214568914/diagnosis.png?start=1334&end=1335'\n"
        f"  curl -s -o p.png '{SERVICE}/tic/214568914/pixels.png?start=1334&end=1335'",
    ),
    (
        "A cutout that is not cached, without waiting: 202 and a job to poll at Location",
        f"curl -si '{SERVICE}/cutout?ra=63.37389&dec=-69.226789&sector=2&size=30&wait=0' | grep -iE '^(HTTP|location)'",
    ),
    ("An ambiguous short TCE id (409 problem)", f"curl -s {SERVICE}/tic/100100827/tces/TCE_1"),
    ("Browse the API (Swagger UI; ReDoc at /redoc)", f"open {SERVICE}/docs"),
]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) != 0


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited before it was up (exit code {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {seconds:.0f} s")


def stop_on_sigterm(signum: int, frame: object) -> None:
    # `kill` or a supervisor's SIGTERM must stop the children too, exactly like Ctrl-C does.
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    for port in (MAST_PORT, SERVICE_PORT):
        if not port_is_free(port):
            print(f"port {port} is in use; stop what runs there (or set DEMO_MAST_PORT / DEMO_SERVICE_PORT)")
            return 1
    env = {
        **os.environ,
        "TESS_SERVICE_EXOMAST_URL": f"http://{HOST}:{MAST_PORT}/api/v0.1/",
        "TESS_SERVICE_MAST_URL": f"http://{HOST}:{MAST_PORT}",
        # The emulator's SkyBoT (without it the diagnosis would ask the real one, unreachable offline).
        "TESS_SERVICE_SKYBOT_URL": f"http://{HOST}:{MAST_PORT}/webservices/skybot/api/conesearch.php",
        "TESS_SERVICE_CACHE_DIR": os.environ.get("DEMO_CACHE_DIR", str(ROOT / "var" / "demo-cache")),
        "TESS_SERVICE_HOST": HOST,
        "TESS_SERVICE_PORT": str(SERVICE_PORT),
        # A person watches this terminal: plain text lines, unless they asked for JSON.
        "TESS_SERVICE_LOG_FORMAT": os.environ.get("TESS_SERVICE_LOG_FORMAT", "text"),
    }
    python = sys.executable
    mast = subprocess.Popen([python, "-m", "tests.fake_mast", "--host", HOST, "--port", str(MAST_PORT)], cwd=ROOT)
    service = subprocess.Popen([python, "-m", "service"], cwd=ROOT, env=env)
    children = [service, mast]
    try:
        wait_until_up(f"http://{HOST}:{MAST_PORT}/__fake__/counters", mast)
        wait_until_up(f"{SERVICE}/health", service)
        print(f"\nMAST emulator on http://{HOST}:{MAST_PORT}, service on {SERVICE}\n")
        for title, command in EXAMPLES:
            print(f"# {title}\n  {command}\n")
        print("Ctrl-C stops both.", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a process exited; stopping the demo")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
