"""The image built from this checkout, an emulator container beside it, and the service containers the tests run.

Every test here is marked `container`, `slow` and `process`. `make test` runs this directory on its own, after the
rest of the suite, so that the build's CPU does not slow the timing-sensitive tests. Without Podman the tests fail
saying what to install; `TESS_SKIP_CONTAINER=1` skips them instead (.ci/run installs everything, so CI never skips).
The images are tagged `localhost/tess-service:test` and `localhost/tess-fake-mast:test` and kept, so a second run
builds from cached layers; containers, volumes and the network made by a run are removed at its end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.container.podman import SKIP_VARIABLE, Podman, missing_tools, wait_for_http
from tests.service_process import free_port

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parents[1] / "var" / "test-artifacts" / "container"
SERVICE_IMAGE = "localhost/tess-service:test"
EMULATOR_IMAGE = "localhost/tess-fake-mast:test"
SERVICE_PORT = 8000
EMULATOR_PORT = 8001
CACHE_DIR = "/var/cache/tess-service"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the container tests, or skip them all when `TESS_SKIP_CONTAINER` is set (this hook sees every test)."""
    skipping = os.environ.get(SKIP_VARIABLE, "") not in ("", "0")
    for item in items:
        if HERE in item.path.parents:
            for mark in (pytest.mark.container, pytest.mark.slow, pytest.mark.process):
                item.add_marker(mark)
            if skipping:
                item.add_marker(pytest.mark.skip(reason=f"{SKIP_VARIABLE} is set"))


@dataclass(frozen=True)
class Images:
    service: str
    emulator: str


@dataclass(frozen=True)
class Container:
    name: str
    url: str  # http://127.0.0.1:PORT, the published service port


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    """This session's Podman; fails (does not skip) when Podman or its tools are missing."""
    missing = missing_tools()
    assert not missing, f"the container tests need {', '.join(missing)} (apt-get install / pip; or {SKIP_VARIABLE}=1)"
    session = Podman()
    yield session
    session.remove_all()


@pytest.fixture(scope="session")
def images(podman: Podman) -> Images:
    """Both images of the Dockerfile, built on the local Debian base; the seconds each step took are written down."""
    timings = {"base_s": podman.build_base()}
    timings["service_s"] = podman.build("service", SERVICE_IMAGE)
    timings["emulator_s"] = podman.build("emulator", EMULATOR_IMAGE)
    sizes = {image: podman.inspect("image", image)["Size"] for image in (SERVICE_IMAGE, EMULATOR_IMAGE)}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "build.json").write_text(json.dumps({"seconds": timings, "bytes": sizes}, indent=2) + "\n")
    return Images(SERVICE_IMAGE, EMULATOR_IMAGE)


@pytest.fixture(scope="session")
def network(podman: Podman) -> str:
    """A network of this session's own, on which containers find each other by name."""
    name = f"{podman.prefix}-net"
    podman.run("network", "create", name)
    return name


@pytest.fixture(scope="session")
def emulator(podman: Podman, images: Images, network: str) -> Container:
    """The MAST emulator's container, reachable as ``<prefix>-mast:8001`` on the network and published on loopback."""
    port = free_port()
    name = podman.start(images.emulator, "mast", "--network", network, "--publish", f"127.0.0.1:{port}:{EMULATOR_PORT}")
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/__fake__/counters", name, podman)
    return Container(name, url)


StartService = Callable[..., Container]


@pytest.fixture(scope="session")
def start_service(podman: Podman, images: Images, network: str, emulator: Container) -> StartService:
    """Start a service container pointed at the emulator container; wait until /health answers 200.

    ``start_service(name, volume=None, *extra)``: ``volume`` is a named volume mounted on the cache directory.
    """
    mast = f"http://{emulator.name}:{EMULATOR_PORT}"
    settings = {
        "TESS_SERVICE_EXOMAST_URL": f"{mast}/api/v0.1/",
        "TESS_SERVICE_MAST_URL": mast,
        "TESS_SERVICE_SKYBOT_URL": f"{mast}/webservices/skybot/api/conesearch.php",
    }

    def start(name: str, volume: str | None = None, *extra: str) -> Container:
        port = free_port()
        args = ["--network", network, "--publish", f"127.0.0.1:{port}:{SERVICE_PORT}", *extra]
        for key, value in settings.items():
            args += ["--env", f"{key}={value}"]
        if volume is not None:
            args += ["--volume", f"{podman.prefix}-{volume}:{CACHE_DIR}"]
        full = podman.start(images.service, name, *args)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/health", full, podman)
        return Container(full, url)

    return start


@pytest.fixture(scope="module")
def service(start_service: StartService) -> Container:
    """One service container with its cache on a named volume, shared by a module's tests that leave it running."""
    return start_service("shared", "shared-cache")
