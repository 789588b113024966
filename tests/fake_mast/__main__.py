"""Run the emulator in the foreground: ``python -m tests.fake_mast --host 127.0.0.1 --port 8001``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .server import FakeMast


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM, then shut down cleanly and return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tests.fake_mast", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8001, help="port to bind, 0 = any free (default: %(default)s)")
    parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    try:
        mast = FakeMast(args.host, args.port, log_requests=args.log_requests).start()
    except OSError as error:
        print(f"fake MAST cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    print(f"fake MAST listening on {mast.url}", flush=True)
    try:
        # A timed wait keeps the main thread returning to the interpreter, where signal handlers run.
        while not stop_requested.wait(0.5):
            pass
    finally:
        mast.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
