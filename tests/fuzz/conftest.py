"""One uvicorn process per fuzz module: starting the service (astropy, matplotlib imports) costs seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_mast import FakeMast
from tests.service_process import free_port, running, service_env, uvicorn_command


@pytest.fixture(scope="module")
def fuzz_service(mast: FakeMast, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of `uvicorn service.main:app` against the emulator, shared by one module's tests.

    Cutout requests without `wait` answer 202 at once (`JOB_WAIT_DEFAULT_S=0`), so no case waits on TESScut work.
    """
    port = free_port()
    env = service_env(
        mast,
        tmp_path_factory.mktemp("fuzz") / "cache",
        TESS_SERVICE_JOB_WAIT_DEFAULT_S="0",
        TESS_SERVICE_TESSCUT_BACKOFF_S="0.05",
        # With wait=0 every distinct cold cutout or movie is new work at once: roomy queues keep deliberate
        # shedding (503 overloaded, which the checks accept) rare, so the cases reach what they test.
        TESS_SERVICE_CUTOUT_QUEUE_MAX="500",
        TESS_SERVICE_RENDER_QUEUE_MAX="500",
    )
    base = f"http://127.0.0.1:{port}"
    with running(uvicorn_command(port), env, base):
        yield base
