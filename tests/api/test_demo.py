"""`make demo` keeps its promise: both servers come up, every printed curl line works, SIGTERM stops both."""

import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.polling import wait_until

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def printed_examples(output: str) -> list[tuple[str, list[str]]]:
    """(title, command lines) for each '# title' block the demo printed."""
    examples = []
    for block in output.split("\n# ")[1:]:
        title, *lines = block.strip().splitlines()
        commands = [line.strip() for line in lines if line.strip().startswith(("curl", "open"))]
        examples.append((title, commands))
    return examples


def run_like_curl(command: str) -> httpx.Response:
    words = shlex.split(command.split("|")[0])
    url = next(word for word in words if word.startswith("http"))
    headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
    method = "HEAD" if "-sI" in words or "-I" in words else "GET"  # -si is GET with headers shown
    return httpx.request(method, url, headers=headers, timeout=30)


def test_demo_serves_and_its_curl_lines_work(tmp_path):
    mast_port, service_port = free_port(), free_port()
    env = {
        **os.environ,
        "DEMO_MAST_PORT": str(mast_port),
        "DEMO_SERVICE_PORT": str(service_port),
        "DEMO_CACHE_DIR": str(tmp_path / "cache"),
    }
    command = [sys.executable, "scripts/demo.py"]
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as demo:
        try:
            printed: list[str] = []

            def came_up() -> bool:
                line = demo.stdout.readline()
                assert line or demo.poll() is None, f"demo exited early:\n{''.join(printed)}"
                printed.append(line)
                print(line, end="")  # pytest shows what the test printed when it fails
                return "Ctrl-C stops both." in "".join(printed)

            wait_until(came_up, 90, what="the demo to come up (its output is in the captured stdout)", interval_s=0)
            output = "".join(printed)

            examples = printed_examples(output)
            assert len(examples) >= 5
            assert examples[0][1] == [f"open http://127.0.0.1:{service_port}/explore/214568914"], "explorer first"
            for title, commands in examples:
                assert commands, title
                for line in commands:
                    assert f":{service_port}/" in line
                    response = run_like_curl(line)
                    expected = 409 if "409" in title else 202 if "202" in title else 200
                    assert response.status_code == expected, (line, response.text[:300])
                    if "/diagnosis?" in line:  # the demo's SkyBoT is the emulator's: the asteroid is named
                        assert response.json()["known_objects"]["status"] == "ok", response.text[:600]
                        assert "2002 TV318" in response.json()["explanation"]
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(timeout=30)
    assert not listening(mast_port) and not listening(service_port), "the demo left a server running"
