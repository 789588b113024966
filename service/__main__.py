"""``python -m service``: serve with uvicorn on the configured host and port."""

import signal
import sys
from types import FrameType

import uvicorn

from service.infra.http_limits import http_protocol_options
from service.infra.logs import configure_logging
from service.settings import get_settings


def main() -> None:
    """Run one uvicorn worker with the settings from the environment."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    uvicorn.run(
        "service.main:app",
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        log_level=settings.log_level,
        # Logging is configured above (JSON or text, with request ids); the access log is the app's own.
        log_config=None,
        access_log=False,
        # SIGTERM: stop accepting, let requests in flight finish for up to this long, then run the lifespan's
        # shutdown (running jobs end failed, nothing partial is cached).
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        # httptools does not bound request headers: this protocol answers 431 past max_header_bytes.
        **http_protocol_options(settings.max_header_bytes),
    )


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """Exit 0: uvicorn re-raises SIGTERM once its graceful shutdown is done, and that shutdown is a clean stop."""
    sys.exit(0)


if __name__ == "__main__":
    # Installed before uvicorn, which captures SIGTERM while it serves and hands it back here when it has stopped
    # (a SIGTERM during start-up lands here directly).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    main()
