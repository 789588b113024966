# Container images of the TESS time-series service.
#
#   docker build -t tess-service .                        -> the service (the last stage is the default target)
#   docker build -t tess-fake-mast --target emulator .    -> the MAST emulator, for offline runs (docker-compose.yml)
#
# Stages: build (a virtual environment) -> runtime (shared base: dependencies, user, paths) -> emulator, service.
# Needs BuildKit (the default builder since Docker 23) or Buildah/Podman (cache mounts). With Podman, build with
# `--format docker`: the OCI image format has no HEALTHCHECK and Podman drops it otherwise.

# The base of every stage. Where a container registry is reachable, the official slim image; where only a Debian
# mirror and PyPI are (CI here, air-gapped build hosts), a local one from Debian's packages:
#   scripts/build_base_image.sh && podman build --build-arg BASE_IMAGE=localhost/tess-base:bookworm ...
# Any base with Python 3.11 as `python3`, its venv module and CA certificates will do; both stages below use the same
# one, so the virtual environment built in the first runs unchanged in the second.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------------------------
# build: the run-time dependencies in a virtual environment at /opt/venv, trimmed of everything the service never
# uses at run time, and the service's own package beside it in /opt/service.
FROM ${BASE_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DEFAULT_TIMEOUT=120

# binutils for `strip` below (this stage only; neither base has it). Two environments: /opt/venv, what the image
# runs, made without pip, and /opt/tools, whose pip installs into it (`--python`), so no installer reaches the image.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv --without-pip /opt/venv \
    && python3 -m venv /opt/tools
WORKDIR /src

# The dependencies first, read from pyproject.toml alone, so that a change to the service's code leaves this layer,
# the trim below and the runtime's copy of the environment (400+ MB) as they are: a new image of new code is one
# small layer. The cache mount keeps downloads out of every layer.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > requirements.txt \
    && /opt/tools/bin/pip --python /opt/venv/bin/python install --requirement requirements.txt

# What the service never runs, measured by `du` on the built environment (README, "Docker"): the test suites that
# numpy, matplotlib, astropy, astroquery and others ship (astropy.tests stays: `import astropy` loads its test
# runner), Cython/C sources, type stubs and source maps, Bokeh's unminified BokehJS (the service serves the minified
# bundles), the symbols of compiled extension modules that their wheels ship unstripped (uvloop's alone are 11 MB;
# the libraries that auditwheel vendored into *.libs/ are left alone, as strip can break what patchelf rewrote), and
# the bytecode of what was removed.
RUN set -eux; sp=/opt/venv/lib/python3.11/site-packages; \
    find "$sp" -depth -type d -name tests ! -path "$sp/astropy/tests" -exec rm -rf {} +; \
    find "$sp" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.c' -o -name '*.h' -o -name '*.cpp' \
        -o -name '*.pyi' -o -name '*.js.map' \) -delete; \
    find "$sp"/bokeh/server/static/js -maxdepth 1 -type f -name '*.js' ! -name '*.min.js' -delete; \
    find "$sp" -type f -name '*.so' ! -path '*.libs/*' -exec strip --strip-unneeded {} +; \
    find "$sp" -depth -type d -name __pycache__ -empty -delete

# The service on its own, to be copied into the environment's site-packages by the runtime stage. The import at the
# end fails the build if the trim above removed anything the service loads.
# README.md is the project's readme in pyproject.toml; the wildcard keeps the build going without it.
COPY README.md* ./
COPY service/ ./service/
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/tools/bin/pip install --no-deps --no-compile --target /opt/service . \
    && /opt/venv/bin/python -m compileall -q /opt/service/service \
    && PYTHONPATH=/opt/service /opt/venv/bin/python -c "import service.main, uvloop, httptools, websockets, kiwisolver, \
matplotlib.pyplot, PIL.Image, astropy.io.fits, astropy.wcs, astropy.time, erfa, astroquery.mast, bokeh.embed, \
imageio_ffmpeg; imageio_ffmpeg.get_ffmpeg_exe()"

# ---------------------------------------------------------------------------------------------------------------
# runtime: the base with the virtual environment, a non-root user and the writable paths. Both images below start
# from it; it declares nothing about ports or commands itself.
FROM ${BASE_IMAGE} AS runtime

# MPLCONFIGDIR: matplotlib (a dependency) wants a writable config/cache directory and the user's home may not be
# writable (e.g. when the container runs with an arbitrary uid), so point it at /tmp.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib

COPY --from=build /opt/venv /opt/venv

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

# Last, as it is what changes most: the service's package (a few hundred kB) joins the environment.
COPY --from=build /opt/service/ /opt/venv/lib/python3.11/site-packages/

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
# infra: what docker-compose.yml's `scale` profile runs beside the service, from Debian and PyPI alone (no other
# registry is needed): Debian's nginx and redis-server, and moto's S3-compatible server for trying the profile
# (it keeps objects in memory; use a real object store in production).
FROM ${BASE_IMAGE} AS infra

RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/moto \
    && /opt/moto/bin/pip install --no-cache-dir "moto[server]>=5.0"

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
