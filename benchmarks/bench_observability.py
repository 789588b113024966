"""What the request-id / metrics / access-log middleware costs per request.

Calls ASGI apps directly in one event loop (no sockets, no client), so the difference between two rows is the
middleware's own cost:
  - a bare ASGI app that answers 200 with 16 bytes, with and without RequestObservabilityMiddleware
    (access log off; access log on through the JSON formatter and the queue to a writer thread, into /dev/null);
  - for scale, the same request id echo done with Starlette's BaseHTTPMiddleware;
  - the real app's GET /health (FastAPI routing, dependency-free route) with and without the middleware.

Run: .venv/bin/python benchmarks/bench_observability.py
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starlette.middleware.base import BaseHTTPMiddleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

from service.infra.logs import configure_logging  # noqa: E402
from service.infra.observability import RequestObservabilityMiddleware  # noqa: E402

CALLS = 20_000
REPEATS = 3
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"0123456789abcdef"})


def scope_for(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def per_call_us(app: ASGIApp, path: str) -> float:
    """Best of REPEATS: mean microseconds per request over CALLS sequential calls."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(CALLS):
            await app(scope_for(path), receive, send)
        best = min(best, (time.perf_counter() - started) / CALLS * 1e6)
    return best


async def echo_request_id(request: Request, call_next: Any) -> Response:
    response: Response = await call_next(request)
    response.headers["X-Request-ID"] = request.headers.get("x-request-id", "generated")
    return response


def without_observability(app: Any) -> Any:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not RequestObservabilityMiddleware]
    app.middleware_stack = None
    return app


async def main() -> None:
    from asgi_lifespan import LifespanManager

    from service.main import create_app
    from service.settings import Settings

    rows: list[tuple[str, float]] = []
    bare = await per_call_us(bare_app, "/x")
    rows.append(("bare ASGI app", bare))
    rows.append(
        (
            "+ RequestObservabilityMiddleware, no access log",
            await per_call_us(RequestObservabilityMiddleware(bare_app, access_log=False), "/x"),
        )
    )

    listener = configure_logging("json", "info")
    writer = listener.handlers[0]
    assert isinstance(writer, logging.StreamHandler)
    writer.setStream(open("/dev/null", "w"))  # noqa: SIM115 (lives as long as the process)
    rows.append(
        (
            "+ RequestObservabilityMiddleware, JSON access log",
            await per_call_us(RequestObservabilityMiddleware(bare_app, access_log=True), "/x"),
        )
    )
    logging.getLogger().setLevel(logging.WARNING)
    rows.append(
        (
            "+ BaseHTTPMiddleware echoing X-Request-ID only",
            await per_call_us(BaseHTTPMiddleware(bare_app, dispatch=echo_request_id), "/x"),
        )
    )

    settings = Settings(cache_dir=Path("/tmp/bench-observability-cache"), access_log=False)
    async with (
        LifespanManager(create_app(settings)) as with_mw,
        LifespanManager(without_observability(create_app(settings))) as without_mw,
    ):
        # Alternated, best of each: the machine is shared, and a start-up task may still be running at first.
        best = {"with": float("inf"), "without": float("inf")}
        for _ in range(5):
            for label, manager in (("with", with_mw), ("without", without_mw)):
                best[label] = min(best[label], await per_call_us(manager.app, "/health"))
    for label, us in best.items():
        rows.append((f"real app GET /health, {label} middleware (no access log)", us))

    width = max(len(label) for label, _ in rows)
    print(f"{'':{width}}  µs/request   vs bare app")
    for label, us in rows:
        print(f"{label:{width}}  {us:8.2f}   {us - bare:+8.2f}")
    with_mw = next(us for label, us in rows if label.startswith("real app") and "with " in label)
    without_mw = next(us for label, us in rows if "without" in label)
    print(
        f"\nreal app: the middleware adds {with_mw - without_mw:.2f} µs to a {without_mw:.1f} µs request "
        f"({(with_mw - without_mw) / without_mw:.1%}); at 2,000 requests/s that is "
        f"{(with_mw - without_mw) * 2000 / 1e6:.2%} of one core."
    )


if __name__ == "__main__":
    asyncio.run(main())
