"""The image as users run it: built from this checkout with Podman, started, checked over HTTP and stopped.

What only a real build and a real run show: a file left out of the wheel, a missing system library, a wrong owner on
the cache volume, a healthcheck that never passes, a process that is root or ignores SIGTERM.
"""

from __future__ import annotations

import httpx

from tests.container.conftest import (
    CACHE_DIR,
    Container,
    Images,
    StartService,
)
from tests.container.podman import Podman, wait_for_http
from tests.polling import poll_job_sync, wait_until
from tests.service_process import free_port

UNPRIVILEGED_UID = 10001
MAX_IMAGE_BYTES = 600_000_000  # issue 14's ceiling: the image was 885 MB before it was trimmed
TIC = 214568914
TUTORIAL_MOVIE = f"/tic/{TIC}/movie?start=1334&end=1335"


def test_the_image_is_small_and_carries_its_healthcheck(podman: Podman, images: Images) -> None:
    image = podman.inspect("image", images.service)
    assert image["Size"] <= MAX_IMAGE_BYTES, f"{image['Size'] / 1e6:.0f} MB"
    check = image["Healthcheck"]["Test"]  # Podman shows it at the top level, from the Docker-format config
    assert check[0] == "CMD" and "/health" in " ".join(check), check
    assert image["Config"]["User"].split(":")[0] == str(UNPRIVILEGED_UID)


def test_health_ready_and_the_explorer_answer(service: Container) -> None:
    assert httpx.get(f"{service.url}/health", timeout=10).json()["status"] == "ok"
    ready = httpx.get(f"{service.url}/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    cache = next(check for check in ready.json()["checks"] if check["name"] == "cache")
    assert cache["ok"] and cache["state"] == "writable", cache
    # The page's template and script are package data: an image whose wheel left them out cannot start at all.
    page = httpx.get(f"{service.url}/explore/{TIC}", timeout=10)
    assert page.status_code == 200 and "explorer.js" in page.text
    assert httpx.get(f"{service.url}/static/explorer/explorer.js", timeout=10).status_code == 200


def test_the_service_runs_as_the_unprivileged_user(podman: Podman, service: Container) -> None:
    status = podman.run("exec", service.name, "cat", "/proc/1/status").stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uids) == {str(UNPRIVILEGED_UID)}, status  # real, effective, saved and filesystem uid
    command = podman.run("exec", service.name, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert command[1:3] == ["-m", "service"], command  # PID 1 is the service itself, so it gets the SIGTERM


def test_the_image_healthcheck_passes(podman: Podman, service: Container) -> None:
    done = podman.run("healthcheck", "run", service.name, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert podman.inspect("container", service.name)["State"]["Health"]["Status"] == "healthy"


def test_the_cache_lives_on_the_named_volume_and_outlives_the_container(
    podman: Podman, start_service: StartService, emulator: Container
) -> None:
    first = start_service("cache-a", "cache")
    path = f"/tic/{TIC}/tces"
    asked = httpx.get(f"{first.url}{path}", timeout=30)
    assert asked.status_code == 200 and asked.headers["x-cache"] == "MISS", asked.text
    calls = upstream_calls(emulator)
    podman.run("rm", "--force", "--time", "10", first.name)

    second = start_service("cache-b", "cache")
    again = httpx.get(f"{second.url}{path}", timeout=30)
    assert again.status_code == 200 and again.headers["x-cache"] == "HIT"
    assert again.content == asked.content and again.headers["etag"] == asked.headers["etag"]
    assert upstream_calls(emulator) == calls, "the second container asked the emulator again"
    # The volume, not the container's own layer, holds the entries, and the service's user owns them.
    owner = podman.run("exec", second.name, "stat", "-c", "%u %F", CACHE_DIR).stdout.split()[0]
    mounts = podman.inspect("container", second.name)["Mounts"]
    assert owner == str(UNPRIVILEGED_UID)
    assert [m["Name"] for m in mounts if m["Destination"] == CACHE_DIR] == [f"{podman.prefix}-cache"], mounts


def test_sigterm_stops_the_service_cleanly_within_the_grace_period(podman: Podman, start_service: StartService) -> None:
    container = start_service("stop")
    # `podman stop` sends the image's STOPSIGNAL (SIGTERM) and SIGKILLs after --time seconds: exit code 137.
    podman.run("stop", "--time", "10", container.name)
    state = podman.inspect("container", container.name)["State"]
    assert state["ExitCode"] == 0, podman.logs(container.name)[-3000:]
    assert "Application shutdown complete" in podman.logs(container.name)


def test_the_offline_compose_profile_answers_the_tutorial_movie(podman: Podman, images: Images) -> None:
    ports = {"TESS_OFFLINE_PORT": free_port(), "TESS_EMULATOR_PORT": free_port(), "TESS_PORT": free_port()}
    env = {"TESS_IMAGE": images.service, "TESS_EMULATOR_IMAGE": images.emulator} | {
        name: str(port) for name, port in ports.items()
    }
    podman.compose("--profile", "offline", "up", "--detach", "--no-build", "tess-service-offline", env=env)
    try:
        project = f"label=io.podman.compose.project={podman.prefix}"
        running = podman.run("ps", "--format", "{{.Names}}", "--filter", project).stdout.split()
        assert len(running) == 2 and not any("_tess-service_" in name for name in running), running
        emulator = next(name for name in running if "fake-mast" in name)
        service = next(name for name in running if "tess-service-offline" in name)
        # Both healthchecks pass (Podman 4.3 has no timers without systemd: run them by hand until they do).
        for name in (emulator, service):
            wait_until(
                lambda name=name: podman.run("healthcheck", "run", name, check=False).returncode == 0,
                60,
                what=f"{name} to be healthy",
                interval_s=1,
            )
        base = f"http://127.0.0.1:{ports['TESS_OFFLINE_PORT']}"
        wait_for_http(f"{base}/ready", service, podman)
        with httpx.Client(base_url=base, timeout=60) as client:
            answer = client.get(TUTORIAL_MOVIE)
            if answer.status_code == 202:
                poll_job_sync(client, answer, until=lambda job: job["status"] == "done")
                answer = client.get(TUTORIAL_MOVIE)
        assert answer.status_code == 200, answer.text[:500]
        assert answer.headers["content-type"] == "image/gif" and answer.content[:6] == b"GIF89a"
        counters = httpx.get(f"http://127.0.0.1:{ports['TESS_EMULATOR_PORT']}/__fake__/counters", timeout=10).json()
        assert any("tesscut" in endpoint for endpoint in counters["endpoints"]), counters
    finally:
        podman.compose("--profile", "offline", "down", "--volumes", env=env)


def upstream_calls(emulator: Container) -> int:
    """Requests the emulator has answered, control requests left out."""
    counters = httpx.get(f"{emulator.url}/__fake__/counters", timeout=10).json()
    return sum(count for endpoint, count in counters["endpoints"].items() if not endpoint.startswith("control."))
