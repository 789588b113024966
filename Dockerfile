# Container images of the TESS time-series service.
#
#   docker build -t tess-service .                        -> the service (the last stage is the default target)
#   docker build -t tess-fake-mast --target emulator .    -> the MAST emulator, for offline runs (docker-compose.yml)
#
# Stages: build (wheels) -> runtime (shared base: dependencies, user, paths) -> emulator, service.
# Needs BuildKit (the default builder since Docker 23): the wheels are bind-mounted, not copied, into the runtime.

# ---------------------------------------------------------------------------------------------------------------
# build: every wheel the service needs, built or downloaded once, so the runtime installs offline and needs no
# compiler. The tag names the Debian release so that the wheels' glibc is the one the runtime stage runs on.
FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src

# Only what the wheel is built from: the rest of the repository (tests, benchmarks, .venv) never reaches this
# stage. README.md is the project's readme in pyproject.toml; the wildcard keeps the build going without it.
COPY pyproject.toml README.md* ./
COPY service/ ./service/

# The cache mount keeps downloaded wheels across builds without leaving them in a layer.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --wheel-dir /wheels .

# ---------------------------------------------------------------------------------------------------------------
# runtime: the slim base with the service and its dependencies installed, a non-root user and the writable
# paths. Both images below start from it; it declares nothing about ports or commands itself.
FROM python:3.11-slim-bookworm AS runtime

# MPLCONFIGDIR: matplotlib (a dependency) wants a writable config/cache directory and the user's home may not be
# writable (e.g. when the container runs with an arbitrary uid), so point it at /tmp.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MPLCONFIGDIR=/tmp/matplotlib

# --no-index: install exactly the wheels built above, never reaching PyPI. The bind mount keeps /wheels out of
# every layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels tess-service

# A fixed, numeric uid/gid (10001, outside the range of distribution users) so that volume ownership is
# predictable and orchestrators can verify runAsNonRoot. The cache directory is created here, owned by that user,
# so that a named volume mounted on it starts with that ownership.
RUN groupadd --system --gid 10001 tess \
    && useradd --system --uid 10001 --gid tess --create-home --home-dir /home/tess --shell /usr/sbin/nologin tess \
    && mkdir -p /var/cache/tess-service /app \
    && chown tess:tess /var/cache/tess-service

WORKDIR /app
USER 10001:10001

# Build matplotlib's font cache now rather than on the first request of every new container.
RUN python -c "import matplotlib.font_manager"

# ---------------------------------------------------------------------------------------------------------------
# emulator: the MAST emulator from the test suite (ExoMAST under /api/v0.1/, TESScut under /tesscut/api/v0.1/),
# for running the service with no network. `python -m tests.fake_mast` imports `tests` from the working
# directory, and the emulator reads its data from tests/data/ there.
FROM runtime AS emulator

# The wildcard copies tests/__init__.py when the repository has one and nothing otherwise.
COPY tests/__init__.py* ./tests/
COPY tests/fake_mast/ ./tests/fake_mast/
COPY tests/data/ ./tests/data/

EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8001/__fake__/counters', timeout=4)"]
CMD ["python", "-m", "tests.fake_mast", "--host", "0.0.0.0", "--port", "8001"]

# ---------------------------------------------------------------------------------------------------------------
# service: last, so that a build without --target produces it.
FROM runtime AS service

# HOST=0.0.0.0: the default (127.0.0.1) would be unreachable from outside the container.
ENV TESS_SERVICE_HOST=0.0.0.0 \
    TESS_SERVICE_PORT=8000 \
    TESS_SERVICE_CACHE_DIR=/var/cache/tess-service

# The disk cache outlives the container; mount a named volume here (docker-compose.yml does).
VOLUME /var/cache/tess-service
EXPOSE 8000

# Slim images have no curl: GET /health with the standard library. urlopen raises on a refused connection, a
# timeout and any non-2xx answer, so the command exits non-zero exactly when the check fails. It follows
# TESS_SERVICE_PORT if that is overridden at run time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TESS_SERVICE_PORT', '8000') + '/health', timeout=4)"]

# Exec form: python is PID 1 and receives SIGTERM from `docker stop`, so uvicorn shuts down gracefully: it stops
# accepting, lets requests in flight finish for up to TESS_SERVICE_SHUTDOWN_GRACE_S (8 s, inside `docker stop`'s
# default 10 s before SIGKILL; raise both together, e.g. compose's stop_grace_period), fails running jobs cleanly
# and exits 0.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "service"]
