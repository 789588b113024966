# Everything runs from the project's own virtual environment, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast test-container run openapi lint bench bench-load bench-replicas fake-mast clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: start the MAST emulator (:8001) and the service (:8000) pointed at it; Ctrl-C stops both
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## test: lint, type-check and run the whole test suite, one worker process per core (a module stays on one worker,
## so its module-scoped service process or emulator is started once); then the shared-mode tests on their own
## (tests/shared: up to four service processes each, measuring TESScut's starts per second at the emulator, which
## another module's load on the same two cores would skew); then build the image with Podman and run it
## (tests/container, on its own so that the build's CPU does not slow the timing-sensitive tests)
test: $(STAMP) lint
	$(BIN)/python -m pytest -n auto --dist loadscope --ignore=tests/container --ignore=tests/shared
	$(BIN)/python -m pytest tests/shared
	$(BIN)/python -m pytest tests/container

## test-container: only the image tests (needs podman, buildah, runc, debootstrap: see .ci/run)
test-container: $(STAMP)
	$(BIN)/python -m pytest tests/container

## test-fast: the tests marked neither slow nor process, on one worker per core (for the edit-test loop; no lint)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not process" -n auto --dist loadscope

lint: $(STAMP)
	$(BIN)/ruff check service tests benchmarks scripts
	$(BIN)/ruff format --check service tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

## run: serve against the real MAST on 127.0.0.1:8000
run: $(STAMP)
	$(BIN)/python -m service

## fake-mast: run only the MAST emulator on 127.0.0.1:8001
fake-mast: $(STAMP)
	$(BIN)/python -m tests.fake_mast --port 8001

## openapi: regenerate openapi/openapi.json and the README's configuration table from the app
openapi: $(STAMP)
	$(BIN)/python scripts/export_openapi.py
	$(BIN)/python scripts/readme_config.py

## bench: run the side-by-side benchmarks
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_dv_table.py
	$(BIN)/python benchmarks/bench_events.py
	$(BIN)/python benchmarks/bench_ffi_lightcurve.py
	$(BIN)/python benchmarks/bench_diagnosis.py
	$(BIN)/python benchmarks/bench_diagnosis_speed.py
	$(BIN)/python benchmarks/bench_explorer.py
	$(BIN)/python benchmarks/bench_movie_formats.py

## bench-load: the service under wrk at 32 connections, next to nginx, then warm + cold together (~2 min; needs
## wrk and nginx: apt-get install -y nginx wrk)
bench-load: $(STAMP)
	$(BIN)/python benchmarks/bench_load.py

## bench-replicas: warm throughput through nginx to one replica and to two sharing the cache tier (~1 min; needs
## wrk, nginx and redis-server: apt-get install -y nginx wrk redis-server)
bench-replicas: $(STAMP)
	$(BIN)/python benchmarks/bench_replicas.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
