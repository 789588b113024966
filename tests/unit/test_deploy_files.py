"""The Dockerfile, .dockerignore and docker-compose.yml agree with the application and with each other.

No Docker engine is needed: the files are parsed here (the Dockerfile by a small line parser, the compose file by
PyYAML) and compared with the settings, the routes and the repository's layout.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from service.api.health import HEALTH_PATH
from service.main import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "docker-compose.yml"

SERVICE_CMD = ["python", "-m", "service"]
EMULATOR_MODULE = "tests.fake_mast"
OFFLINE_PROFILE = "offline"
SETTING_VARIABLE = re.compile(r"\bTESS_SERVICE_[A-Z0-9_]+\b")


# --- a small Dockerfile parser -----------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Stage]:
    """Split into stages of instructions: comments dropped, `\\` continuations joined, keywords upper-cased."""
    logical: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue  # Docker drops comment lines, and empty lines, inside a continuation too
        if not stripped:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        logical.append((start, " ".join(part for part in pending if part)))
        pending = []
    assert not pending, "the Dockerfile ends inside a line continuation"

    stages: list[Stage] = []
    global_args: dict[str, str] = {}  # ARGs before the first FROM: the only ones a FROM line can use
    for number, line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name.strip()] = default.strip()
            continue
        if keyword == "FROM":
            args = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m.group(1) or m.group(2)], args)
            words = [word for word in args.split() if not word.startswith("--")]
            if len(words) == 3 and words[1].upper() == "AS":
                stages.append(Stage(name=words[2], base=words[0]))
            else:
                stages.append(Stage(name=str(len(stages)), base=words[0]))
            continue
        assert stages, f"line {number}: {keyword} before any FROM"
        stages[-1].instructions.append(Instruction(keyword, args, number))
    return stages


def exec_form(args: str) -> list[str]:
    """The JSON-array form of CMD, ENTRYPOINT or HEALTHCHECK CMD, which is the only form accepted here."""
    assert args.startswith("["), f"not in exec (JSON array) form: {args!r}"
    parsed = json.loads(args)
    assert isinstance(parsed, list) and all(isinstance(word, str) for word in parsed), args
    return parsed


def env_pairs(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return {words[0]: args.split(None, 1)[1] if len(words) > 1 else ""}  # legacy `ENV KEY value`
    return dict(word.split("=", 1) for word in words)


def split_flags(args: str) -> tuple[dict[str, list[str]], str]:
    """Leading `--name=value` flags of an instruction (a flag may repeat, like --mount), and the rest."""
    flags: dict[str, list[str]] = {}
    rest = args
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags.setdefault(name, []).append(value)
        rest = rest.strip()
    return flags, rest


class Dockerfile:
    def __init__(self, text: str) -> None:
        self.stages = parse_dockerfile(text)
        self.by_name = {stage.name: stage for stage in self.stages}
        assert len(self.by_name) == len(self.stages), "two stages share a name"

    def chain(self, name: str) -> list[Stage]:
        """The stage and the stages it is built FROM, the base first."""
        stages: list[Stage] = []
        stage: Stage | None = self.by_name[name]
        while stage is not None:
            stages.insert(0, stage)
            stage = self.by_name.get(stage.base)
        return stages

    def instructions(self, name: str, keyword: str) -> list[Instruction]:
        """Every `keyword` instruction that applies to stage `name`, inherited ones first."""
        return [ins for stage in self.chain(name) for ins in stage.instructions if ins.keyword == keyword]

    def last(self, name: str, keyword: str) -> Instruction:
        found = self.instructions(name, keyword)
        assert found, f"stage {name!r} has no {keyword}"
        return found[-1]

    def own(self, name: str, keyword: str) -> list[Instruction]:
        """The `keyword` instructions written in stage `name` itself."""
        return [ins for ins in self.by_name[name].instructions if ins.keyword == keyword]

    def env(self, name: str) -> dict[str, str]:
        merged: dict[str, str] = {}
        for ins in self.instructions(name, "ENV"):
            merged.update(env_pairs(ins.args))
        return merged

    def exposed(self, name: str) -> set[int]:
        return {int(word.split("/")[0]) for ins in self.instructions(name, "EXPOSE") for word in ins.args.split()}

    def volumes(self, name: str) -> set[str]:
        found: set[str] = set()
        for ins in self.instructions(name, "VOLUME"):
            found.update(exec_form(ins.args) if ins.args.startswith("[") else ins.args.split())
        return found

    def cmd(self, name: str) -> list[str]:
        return exec_form(self.last(name, "CMD").args)

    def healthcheck(self, name: str) -> list[str]:
        _, rest = split_flags(self.last(name, "HEALTHCHECK").args)
        keyword, _, command = rest.partition(" ")
        assert keyword.upper() == "CMD", f"HEALTHCHECK of {name!r} is not `CMD [...]`: {rest!r}"
        return exec_form(command.strip())

    def workdir(self, name: str) -> PurePosixPath:
        path = PurePosixPath("/")
        for ins in self.instructions(name, "WORKDIR"):
            path = path / ins.args  # an absolute WORKDIR replaces, a relative one extends
        return path

    def copies(self, name: str) -> list[tuple[dict[str, list[str]], list[str], PurePosixPath]]:
        """(flags, sources, absolute destination) of each COPY written in stage `name`."""
        stage = self.by_name[name]
        workdir = self.workdir(stage.base) if stage.base in self.by_name else PurePosixPath("/")
        found = []
        for ins in stage.instructions:
            if ins.keyword == "WORKDIR":
                workdir = workdir / ins.args
            elif ins.keyword == "COPY":
                flags, rest = split_flags(ins.args)
                *sources, dest = exec_form(rest) if rest.startswith("[") else rest.split()
                found.append((flags, sources, workdir / dest))
        return found


def user_of(value: str) -> str:
    return value.split(":", 1)[0].strip()


def option_value(argv: list[str], option: str) -> str:
    for index, word in enumerate(argv):
        if word == option:
            return argv[index + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{option} not in {argv}")


# --- .dockerignore, the way Docker's pattern matcher reads it ---------------------------------------------------


def dockerignore_patterns(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(is exception, regex) per pattern, in order. `**` spans directories; `*` and `?` do not."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = str(PurePosixPath(line.lstrip("!").strip().lstrip("/")))
        regex = ""
        index = 0
        while index < len(pattern):
            char = pattern[index]
            if pattern.startswith("**/", index):
                regex += "(?:.*/)?"
                index += 3
                continue
            if pattern.startswith("**", index):
                regex += ".*"
                index += 2
                continue
            if char == "*":
                regex += "[^/]*"
            elif char == "?":
                regex += "[^/]"
            elif char == "[":
                end = pattern.index("]", index)
                regex += pattern[index : end + 1]
                index = end
            else:
                regex += re.escape(char)
            index += 1
        patterns.append((negated, re.compile(regex + r"\Z")))
    return patterns


def ignored(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context leaves `path` out: the last pattern matching it or a parent directory wins."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: count + 1]) for count in range(len(parts))]
    result = False
    for negated, regex in patterns:
        if any(regex.match(prefix) for prefix in prefixes):
            result = not negated
    return result


# --- the compose file --------------------------------------------------------------------------------------------


def with_defaults(text: str) -> str:
    """Compose's `${NAME:-default}` interpolation as if no variable were set (the file's own defaults)."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def port_mapping(spec: Any) -> tuple[str, int]:
    """(published host port, container port) of one `ports` entry, short or long syntax."""
    if isinstance(spec, dict):
        return with_defaults(str(spec.get("published", ""))), int(spec["target"])
    text = with_defaults(str(spec)).split("/")[0]
    *host, container = text.split(":")
    return (host[-1] if host else ""), int(container)


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Mount target -> source of each volume of a service, short or long syntax."""
    mounts: dict[str, str] = {}
    for spec in service.get("volumes", []):
        if isinstance(spec, dict):
            mounts[spec["target"]] = spec.get("source", "")
        else:
            source, target, *_ = str(spec).split(":")
            mounts[target] = source
    return mounts


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def build_target(service: dict[str, Any]) -> str | None:
    build = service.get("build")
    return build.get("target") if isinstance(build, dict) else None


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on", {})
    return {name: {} for name in deps} if isinstance(deps, list) else deps


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict) and isinstance(loaded.get("services"), dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def service_stage(dockerfile: Dockerfile) -> str:
    """The stage that runs the service: the last one, which `docker build` without --target produces."""
    return dockerfile.stages[-1].name


@pytest.fixture(scope="module")
def emulator_stage(dockerfile: Dockerfile) -> str:
    found = [stage.name for stage in dockerfile.stages if _runs_emulator(stage)]
    assert len(found) == 1, f"exactly one stage should run `python -m {EMULATOR_MODULE}`, found {found}"
    return found[0]


def _runs_emulator(stage: Stage) -> bool:
    own_cmd = [ins for ins in stage.instructions if ins.keyword == "CMD"]
    return bool(own_cmd) and exec_form(own_cmd[-1].args)[:3] == ["python", "-m", EMULATOR_MODULE]


@pytest.fixture(scope="module")
def default_service(services: dict[str, dict[str, Any]], service_stage: str) -> tuple[str, dict[str, Any]]:
    """The compose service that runs by default (no profile) and builds the service stage."""
    found = [(n, s) for n, s in services.items() if not s.get("profiles") and build_target(s) == service_stage]
    assert len(found) == 1, f"expected one profile-less compose service building {service_stage!r}, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def emulator_service(services: dict[str, dict[str, Any]], emulator_stage: str) -> tuple[str, dict[str, Any]]:
    found = [(n, s) for n, s in services.items() if build_target(s) == emulator_stage]
    assert len(found) == 1, f"expected one compose service building {emulator_stage!r}, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def offline_service(services: dict[str, dict[str, Any]], service_stage: str) -> tuple[str, dict[str, Any]]:
    found = [
        (n, s)
        for n, s in services.items()
        if OFFLINE_PROFILE in s.get("profiles", []) and build_target(s) == service_stage
    ]
    assert len(found) == 1, f"expected one service of profile {OFFLINE_PROFILE!r} building {service_stage!r}"
    return found[0]


def service_port() -> int:
    default = Settings.model_fields["port"].default
    assert isinstance(default, int)
    return default


# --- the Dockerfile ------------------------------------------------------------------------------------------------


def test_the_default_target_is_the_service(dockerfile: Dockerfile, service_stage: str) -> None:
    assert dockerfile.own(service_stage, "CMD"), "the last stage must say itself what it runs"
    assert dockerfile.cmd(service_stage) == SERVICE_CMD


def test_base_images_are_one_pinned_python_that_the_project_supports(dockerfile: Dockerfile) -> None:
    external = {stage.base for stage in dockerfile.stages if stage.base not in dockerfile.by_name}
    # One base for build and runtime: the environment is built with the Python and glibc it runs on.
    assert len(external) == 1, external
    (image,) = external
    match = re.fullmatch(r"python:(\d+\.\d+)-slim-(\w+)", image)
    assert match, f"{image!r} is not python:X.Y-slim-<debian release>"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert match.group(1) + ".0" in SpecifierSet(requires)


def test_the_base_is_a_build_argument_of_every_stage_that_starts_from_one() -> None:
    """Hosts with no container registry build on a local base (scripts/build_base_image.sh) through BASE_IMAGE."""
    froms = [line.split() for line in DOCKERFILE.read_text().splitlines() if line.upper().startswith("FROM ")]
    parsed = Dockerfile(DOCKERFILE.read_text())
    external = [words[1] for words in froms if words[1] not in parsed.by_name]
    assert external and all(base == "${BASE_IMAGE}" for base in external), external


def test_the_runtime_takes_the_environment_the_build_stage_made(dockerfile: Dockerfile, service_stage: str) -> None:
    runtime_chain = {stage.name for stage in dockerfile.chain(service_stage)}
    assert "build" not in runtime_chain, "the service image must not be built FROM the build stage"
    copies = [
        (flags, srcs, dest)
        for stage in dockerfile.chain(service_stage)
        for flags, srcs, dest in dockerfile.copies(stage.name)
        if flags.get("from") == ["build"]
    ]
    # The environment, then the service's package into its site-packages (last: a code change is one small layer).
    assert [(srcs, dest) for _, srcs, dest in copies] == [
        (["/opt/venv"], PurePosixPath("/opt/venv")),
        (["/opt/service/"], PurePosixPath("/opt/venv/lib/python3.11/site-packages")),
    ], copies
    assert dockerfile.env(service_stage)["PATH"].startswith("/opt/venv/bin:")
    # Nothing is installed in the runtime stages: no pip, no apt, so no compiler or package lists reach the image.
    runs = [ins.args for ins in dockerfile.instructions(service_stage, "RUN")]
    assert runs and not any(word in args for args in runs for word in ("pip ", "apt-get", "apt ")), runs


def test_the_build_stage_copies_only_the_package_sources(dockerfile: Dockerfile) -> None:
    sources = [src for _, srcs, _ in dockerfile.copies("build") for src in srcs]
    assert "pyproject.toml" in sources
    assert all(src.rstrip("/*") in {"pyproject.toml", "README.md", "service"} for src in sources), sources


def test_the_service_listens_where_it_is_exposed(dockerfile: Dockerfile, service_stage: str) -> None:
    env = dockerfile.env(service_stage)
    assert dockerfile.exposed(service_stage) == {service_port()}
    assert int(env["TESS_SERVICE_PORT"]) == service_port()
    # The default host, 127.0.0.1, would be unreachable from outside the container.
    assert env["TESS_SERVICE_HOST"] == "0.0.0.0"


def test_the_healthcheck_gets_the_health_route_on_the_service_port(dockerfile: Dockerfile, service_stage: str) -> None:
    command = dockerfile.healthcheck(service_stage)
    assert command[0] == "python", "slim images have no curl: the check must use Python"
    script = " ".join(command)
    assert f"'{HEALTH_PATH}'" in script or f'"{HEALTH_PATH}"' in script, script
    assert re.search(rf"\b{service_port()}\b", script), script
    assert "127.0.0.1" in script


def test_the_health_path_is_a_get_route_of_the_app(tmp_path: Path) -> None:
    app = create_app(Settings(cache_dir=tmp_path))
    assert "get" in app.openapi()["paths"].get(HEALTH_PATH, {})

    async def get() -> httpx.Response:
        # No lifespan: the check must answer before (and without) the cache and the upstream clients.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://container") as client:
            return await client.get(HEALTH_PATH)

    response = asyncio.run(get())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


def test_the_service_does_not_run_as_root(dockerfile: Dockerfile, service_stage: str, emulator_stage: str) -> None:
    for stage in (service_stage, emulator_stage):
        user = user_of(dockerfile.last(stage, "USER").args)
        assert user not in {"", "root", "0"}, f"stage {stage!r} runs as {user!r}"
        # Numeric, so that an orchestrator can tell without the image's /etc/passwd that it is not root.
        assert user.isdigit(), user


def test_the_cache_dir_is_the_volume_and_belongs_to_the_user(dockerfile: Dockerfile, service_stage: str) -> None:
    cache_dir = dockerfile.env(service_stage)["TESS_SERVICE_CACHE_DIR"]
    assert PurePosixPath(cache_dir).is_absolute()
    assert dockerfile.volumes(service_stage) == {cache_dir}
    uid = user_of(dockerfile.last(service_stage, "USER").args)
    prepared = [
        ins.args
        for ins in dockerfile.instructions(service_stage, "RUN")
        if cache_dir in ins.args and "chown" in ins.args and (f"--uid {uid}" in ins.args or f"{uid}:" in ins.args)
    ]
    assert prepared, f"no RUN creates {cache_dir} for uid {uid}"


def test_matplotlib_gets_a_writable_config_dir(dockerfile: Dockerfile, service_stage: str) -> None:
    assert PurePosixPath(dockerfile.env(service_stage)["MPLCONFIGDIR"]).is_relative_to("/tmp")


def test_the_emulator_image_runs_the_emulator_on_its_exposed_port(dockerfile: Dockerfile, emulator_stage: str) -> None:
    cmd = dockerfile.cmd(emulator_stage)
    port = int(option_value(cmd, "--port"))
    assert option_value(cmd, "--host") == "0.0.0.0"
    assert dockerfile.own(emulator_stage, "EXPOSE"), "the emulator stage must EXPOSE its own port"
    assert port in dockerfile.exposed(emulator_stage)
    assert re.search(rf":{port}/", " ".join(dockerfile.healthcheck(emulator_stage)))
    # Nothing service-specific leaks into the emulator image.
    assert service_port() not in dockerfile.exposed(emulator_stage)
    assert not dockerfile.volumes(emulator_stage)


def test_the_emulator_package_sits_under_the_working_directory(dockerfile: Dockerfile, emulator_stage: str) -> None:
    workdir = dockerfile.workdir(emulator_stage)
    destinations = {
        PurePosixPath(src).name: dest for _, srcs, dest in dockerfile.copies(emulator_stage) for src in srcs
    }
    package = PurePosixPath(*EMULATOR_MODULE.split("."))
    assert destinations["fake_mast"] == workdir / package
    assert destinations["data"] == workdir / "tests" / "data"


def test_copied_sources_exist_and_are_in_the_build_context(dockerfile: Dockerfile) -> None:
    patterns = dockerignore_patterns(DOCKERIGNORE.read_text())
    checked = 0
    for stage in dockerfile.stages:
        for flags, sources, _ in dockerfile.copies(stage.name):
            if "from" in flags:
                continue
            for source in sources:
                if any(char in source for char in "*?["):
                    continue
                path = ROOT / source
                assert path.exists(), f"COPY {source}: not in the repository"
                files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
                for file in files:
                    relative = file.relative_to(ROOT).as_posix()
                    if "__pycache__" in relative:
                        continue
                    assert not ignored(relative, patterns), f"COPY {source}: {relative} is left out by .dockerignore"
                    checked += 1
    assert checked


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        (".git/HEAD", True),
        (".venv/bin/python", True),
        ("var/cache/cache.db", True),
        ("benchmarks/results.json", True),
        ("tests/unit/test_deploy_files.py", True),
        ("service/__pycache__/main.cpython-311.pyc", True),
        ("tests/fake_mast/__pycache__/server.cpython-311.pyc", True),
        (".pytest_cache/v/cache/nodeids", True),
        ("pyproject.toml", False),
        ("README.md", False),
        ("service/main.py", False),
        ("tests/__init__.py", False),
        ("tests/fake_mast/server.py", False),
        ("tests/data/tess2018206045859-s0001-0000000025155310-0120-s_lc.fits", False),
    ],
)
def test_dockerignore(path: str, left_out: bool) -> None:
    assert ignored(path, dockerignore_patterns(DOCKERIGNORE.read_text())) is left_out


# --- the compose file ----------------------------------------------------------------------------------------------


def test_compose_uses_the_compose_spec(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the Compose spec has no `version:`"


def test_the_default_service_publishes_the_exposed_port(
    default_service: tuple[str, dict[str, Any]], dockerfile: Dockerfile, service_stage: str
) -> None:
    _, service = default_service
    containers = {port_mapping(spec)[1] for spec in service["ports"]}
    assert containers == dockerfile.exposed(service_stage)
    assert service.get("restart") in {"always", "unless-stopped", "on-failure"}


def test_the_cache_is_one_path_everywhere(
    compose: dict[str, Any], services: dict[str, dict[str, Any]], dockerfile: Dockerfile, service_stage: str
) -> None:
    cache_dir = dockerfile.env(service_stage)["TESS_SERVICE_CACHE_DIR"]
    runners = [s for s in services.values() if build_target(s) == service_stage]
    assert len(runners) >= 2
    for service in runners:
        mounts = volume_mounts(service)
        assert environment(service).get("TESS_SERVICE_CACHE_DIR", cache_dir) == cache_dir
        assert cache_dir in mounts, f"no volume on {cache_dir}"
        assert mounts[cache_dir] in (compose.get("volumes") or {}), "the cache must be a declared named volume"


def test_offline_data_never_reaches_the_real_cache(
    default_service: tuple[str, dict[str, Any]], offline_service: tuple[str, dict[str, Any]]
) -> None:
    assert set(volume_mounts(default_service[1]).values()).isdisjoint(volume_mounts(offline_service[1]).values())


def test_every_setting_named_is_a_setting() -> None:
    known = {"TESS_SERVICE_" + name.upper() for name in Settings.model_fields}
    for path in (DOCKERFILE, COMPOSE_FILE):
        named = set(SETTING_VARIABLE.findall(path.read_text()))
        assert "TESS_SERVICE_CACHE_DIR" in named, path.name
        assert named <= known, f"{path.name}: {sorted(named - known)} are not fields of Settings"


def test_compose_settings_are_valid(services: dict[str, dict[str, Any]], service_stage: str) -> None:
    for name, service in services.items():
        if build_target(service) != service_stage:
            continue
        env = environment(service)
        values = {key.removeprefix("TESS_SERVICE_").lower(): value for key, value in env.items()}
        Settings.model_validate(values)  # raises on a value the service would refuse at start-up
        assert values, name


def test_compose_healthchecks_match_the_dockerfile(
    services: dict[str, dict[str, Any]], dockerfile: Dockerfile, service_stage: str, emulator_stage: str
) -> None:
    for service in services.values():
        target = build_target(service)
        assert target in {service_stage, emulator_stage, "infra"}
        if target == "infra":
            continue  # nginx, redis-server and moto of the scale profile: no check of the Dockerfile's
        if service.get("command") == ["python", "-m", "service.worker"]:
            # A worker serves no /health: its check asks its metrics port.
            port = environment(service)["TESS_SERVICE_WORKER_METRICS_PORT"]
            assert f"127.0.0.1:{port}/" in service["healthcheck"]["test"][-1]
            continue
        assert service["healthcheck"]["test"] == ["CMD", *dockerfile.healthcheck(target)]


def test_the_offline_profile_runs_the_emulator(
    emulator_service: tuple[str, dict[str, Any]], dockerfile: Dockerfile, emulator_stage: str
) -> None:
    _, service = emulator_service
    profiles = service.get("profiles", [])
    assert OFFLINE_PROFILE in profiles and set(profiles) <= {OFFLINE_PROFILE, "scale"}, (
        "the emulator must run only in the profiles that need it (offline, scale)"
    )
    emulator_port = int(option_value(dockerfile.cmd(emulator_stage), "--port"))
    assert {port_mapping(spec)[1] for spec in service.get("ports", [])} == {emulator_port}


def test_the_offline_service_talks_only_to_the_emulator(
    offline_service: tuple[str, dict[str, Any]],
    emulator_service: tuple[str, dict[str, Any]],
    dockerfile: Dockerfile,
    emulator_stage: str,
) -> None:
    _, service = offline_service
    emulator_name, _ = emulator_service
    emulator_port = int(option_value(dockerfile.cmd(emulator_stage), "--port"))
    env = environment(service)
    exomast, mast = urlsplit(env["TESS_SERVICE_EXOMAST_URL"]), urlsplit(env["TESS_SERVICE_MAST_URL"])
    for url in (exomast, mast):
        assert (url.scheme, url.hostname, url.port) == ("http", emulator_name, emulator_port), url.geturl()
    assert exomast.path == urlsplit(Settings.model_fields["exomast_url"].default).path == "/api/v0.1/"
    assert mast.path in {"", "/"}
    assert depends_on(service).get(emulator_name, {}).get("condition") == "service_healthy"


def test_the_default_service_talks_to_the_real_mast(
    default_service: tuple[str, dict[str, Any]], emulator_service: tuple[str, dict[str, Any]]
) -> None:
    _, service = default_service
    emulator_name, _ = emulator_service
    assert emulator_name not in depends_on(service)
    assert not any(emulator_name in value for value in environment(service).values())


@pytest.mark.parametrize("profiles", [set(), {OFFLINE_PROFILE}])
def test_no_two_services_publish_the_same_host_port(services: dict[str, dict[str, Any]], profiles: set[str]) -> None:
    running = [s for s in services.values() if not s.get("profiles") or profiles & set(s["profiles"])]
    published = [port_mapping(spec)[0] for s in running for spec in s.get("ports", [])]
    published = [port for port in published if port]
    assert len(published) == len(set(published)), published
