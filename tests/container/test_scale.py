"""docker-compose.yml's `scale` profile, up with podman-compose: nginx in front of two replicas, two workers, a cache
Redis, a state Redis (AOF), moto's S3 server and the emulator, each a container built from this checkout.

A cutout job started through one replica is followed to its end through the other, the cutout (made by a worker,
handed over through the object store) is served by nginx, and the emulator was asked once.
"""

from __future__ import annotations

import httpx

from tests.container.conftest import Images
from tests.container.podman import Podman
from tests.polling import poll_job_sync, wait_until
from tests.service_process import free_port

INFRA_IMAGE = "localhost/tess-infra:test"
SCALE = ["fake-mast", "cache-redis", "state-redis", "s3", "tess-replica-1", "tess-replica-2", "tess-worker-1",
         "tess-worker-2", "nginx"]  # fmt: skip
CUTOUT = {"ra": 107.27, "dec": -70.0, "sector": 1, "size": 15}


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_the_scale_profile_answers_across_replicas(podman: Podman, images: Images) -> None:
    podman.build("infra", INFRA_IMAGE)
    ports = {name: free_port() for name in ("TESS_SCALE_PORT", "TESS_REPLICA_1_PORT", "TESS_REPLICA_2_PORT",
                                            "TESS_EMULATOR_PORT", "TESS_PORT", "TESS_OFFLINE_PORT")}  # fmt: skip
    env = {"TESS_IMAGE": images.service, "TESS_EMULATOR_IMAGE": images.emulator, "TESS_INFRA_IMAGE": INFRA_IMAGE}
    env |= {name: str(port) for name, port in ports.items()}
    podman.compose("--profile", "scale", "up", "--detach", "--no-build", *SCALE, env=env)
    try:
        project = f"label=io.podman.compose.project={podman.prefix}"
        running = podman.run("ps", "--format", "{{.Names}}", "--filter", project).stdout.split()
        assert len(running) == len(SCALE), running
        front, one, two = (f"http://127.0.0.1:{ports[name]}" for name in
                           ("TESS_SCALE_PORT", "TESS_REPLICA_1_PORT", "TESS_REPLICA_2_PORT"))  # fmt: skip
        for url in (one, two, front):
            wait_until(lambda url=url: answers(f"{url}/ready"), 120, what=f"{url}/ready", interval_s=1)
        started = httpx.get(f"{one}/cutout", params=CUTOUT | {"wait": 0}, timeout=30)
        assert started.status_code == 202, started.text
        with httpx.Client(base_url=two, timeout=30) as other:
            done = poll_job_sync(other, started.headers["location"], timeout_s=120).json()
        assert done["status"] == "done", done
        served = httpx.get(f"{front}{done['result_url']}", timeout=60)
        assert served.status_code == 200 and served.content[:6] == b"SIMPLE", served.text[:300]
        again = httpx.get(f"{two}{done['result_url']}", timeout=60)
        assert again.content == served.content and again.headers["etag"] == served.headers["etag"]
        counters = httpx.get(f"http://127.0.0.1:{ports['TESS_EMULATOR_PORT']}/__fake__/counters", timeout=10).json()
        assert counters["endpoints"].get("tesscut.astrocut") == 1, counters
        worker = next(name for name in running if "tess-worker-1" in name)
        metrics = podman.run("exec", worker, "python", "-c",
                             "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9101/').read().decode())"
                             ).stdout  # fmt: skip
        assert 'tess_queue_jobs{state="queued"}' in metrics
    finally:
        podman.compose("--profile", "scale", "down", "--volumes", env=env)
