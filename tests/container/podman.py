"""Podman, as the container tests drive it: the image built from a local base, containers, volumes, compose.

Every call goes through the `podman` (or `podman-compose`) command with `CONTAINERS_CONF` set to this directory's
containers.conf, so the host's own Podman configuration is neither needed nor changed. Names made here carry one
prefix per test session (`tess-ct-<hex>`), and `Podman.remove_all` removes everything with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CONTAINERS_CONF = HERE / "containers.conf"
BASE_SCRIPT = ROOT / "scripts" / "build_base_image.sh"
SKIP_VARIABLE = "TESS_SKIP_CONTAINER"
# The base the tests build on: Debian's packages through the mirror, so no container registry is needed.
BASE_IMAGE = os.environ.get("TESS_TEST_BASE_IMAGE", "localhost/tess-base:bookworm")
DEBIAN_PACKAGES = ("podman", "buildah", "runc", "debootstrap")
# Cold, the build downloads every wheel from PyPI; warm (layers cached) it takes seconds.
BUILD_TIMEOUT_S = 900.0
START_TIMEOUT_S = 60.0


def missing_tools() -> list[str]:
    """What the container tests need and this machine lacks (Debian packages, or podman-compose from PyPI)."""
    missing = [name for name in DEBIAN_PACKAGES if shutil.which(name) is None]
    if shutil.which("podman-compose", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}") is None:
        missing.append("podman-compose (pip)")
    return missing


@dataclass
class Podman:
    """One test session's use of Podman; every name it makes starts with ``prefix``."""

    prefix: str = field(default_factory=lambda: f"tess-ct-{uuid.uuid4().hex[:8]}")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}

    def run(self, *args: str, timeout_s: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``podman args...``; with ``check`` a non-zero exit fails the test with podman's own output."""
        done = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if check:
            assert done.returncode == 0, f"podman {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done

    def compose(self, *args: str, env: dict[str, str], timeout_s: float = 180.0) -> subprocess.CompletedProcess[str]:
        """Run ``podman-compose -p <prefix> -f docker-compose.yml args...`` from the repository's root."""
        command = [str(Path(sys.executable).parent / "podman-compose"), "-p", self.prefix, "-f", "docker-compose.yml"]
        done = subprocess.run(
            [*command, *args],
            env={**self.env, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        assert done.returncode == 0, f"podman-compose {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done

    def build_base(self) -> float:
        """Build the local Debian base unless it exists; return the seconds it took (0 when it was there)."""
        started = time.monotonic()
        done = subprocess.run(
            ["bash", str(BASE_SCRIPT), BASE_IMAGE],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, f"{BASE_SCRIPT.name} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return 0.0 if "exists" in done.stdout else time.monotonic() - started

    def build(self, target: str, tag: str, dockerfile: Path | None = None) -> float:
        """``podman build --format docker --target target`` on the local base; return the seconds it took."""
        started = time.monotonic()
        args = ["build", "--format", "docker", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--target", target]
        if dockerfile is not None:
            args += ["--file", str(dockerfile)]
        self.run(*args, "--tag", tag, str(ROOT), timeout_s=BUILD_TIMEOUT_S)
        return time.monotonic() - started

    def inspect(self, kind: str, name: str) -> dict[str, Any]:
        """The first object of ``podman <kind> inspect name`` (kind: image, container, volume)."""
        found = json.loads(self.run(kind, "inspect", name).stdout)
        assert isinstance(found, list) and found, found
        return dict(found[0])

    def start(self, image: str, name: str, *args: str) -> str:
        """``podman run -d --name prefix-name args... image``; returns the container's full name."""
        full = f"{self.prefix}-{name}"
        self.run("run", "-d", "--name", full, *args, image)
        return full

    def logs(self, container: str) -> str:
        done = self.run("logs", container, check=False)
        return done.stdout + done.stderr

    def remove_all(self) -> None:
        """Remove this session's containers, volumes and networks (best effort; the images stay, as a build cache)."""
        for listing, remover in (
            (["ps", "-a"], ["rm", "-f", "-t", "0"]),
            (["volume", "ls"], ["volume", "rm", "-f"]),
            (["network", "ls"], ["network", "rm", "-f"]),
        ):
            names = self.run(*listing, "--format", "{{.Names}}" if listing[0] == "ps" else "{{.Name}}", check=False)
            ours = [name for name in names.stdout.split() if name.startswith(self.prefix)]
            if ours:
                self.run(*remover, *ours, check=False)


def wait_for_http(url: str, container: str, podman: Podman, *, status: int = 200) -> httpx.Response:
    """GET ``url`` until it answers ``status``; fail with the container's log when it never does."""

    def answered() -> httpx.Response | None:
        state = podman.inspect("container", container)["State"]
        assert state["Running"], f"{container} stopped ({state['ExitCode']}):\n{podman.logs(container)[-3000:]}"
        try:
            answer = httpx.get(url, timeout=5)
        except httpx.TransportError:
            return None
        return answer if answer.status_code == status else None

    return wait_until(answered, START_TIMEOUT_S, what=f"{url} to answer {status}", interval_s=0.25)
