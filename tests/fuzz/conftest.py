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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each Schemathesis test its operation in its id: ``test_...[GET /tic/{tic_id}/tces]``.

    Schemathesis 4.32 names them so by rewriting the private ``Node._nodeid``, which pytest 9.2 no longer reads, so
    every operation's test had one and the same id: pytest-xdist, which reports by id, counted them as one test.
    """
    for item in items:
        label = getattr(item, "operation_label", None)
        if label and item._id.params is None:  # pytest's own (private) id; `nodeid` is read-only
            item._id = item._id.with_params(label)
