"""``python -m service``: serve with uvicorn on the configured host and port."""

import uvicorn

from service.settings import get_settings


def main() -> None:
    """Run one uvicorn worker with the settings from the environment."""
    settings = get_settings()
    uvicorn.run("service.main:app", host=settings.host, port=settings.port, proxy_headers=True, log_level="info")


if __name__ == "__main__":
    main()
