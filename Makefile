# Thin wrappers: the logic lives in installer/ and the package.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench screenshot

install:
	@GEO4D_VENV=$(VENV) bash installer/install.sh

run: install
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then $(BIN)/geo4d-studio; \
	else echo "No display: showing the sample episode instead (start the Studio from a desktop session)."; \
	$(BIN)/geo4d-studio info "$$($(BIN)/python -c 'from geo4d_studio.paths import default_sample_scene; print(default_sample_scene())')"; fi

lint: install
	$(BIN)/ruff check geo4d_studio tests benchmarks scripts
	$(BIN)/ruff format --check geo4d_studio tests benchmarks scripts
	$(BIN)/lint-imports

# Where tests/conftest.py sends fatal-crash stacks (faulthandler); printed last when pytest dies.
FAULT_LOG ?= $(or $(TMPDIR),/tmp)/geo4d-pytest-faults.log

test: lint
	@GEO4D_FAULT_LOG=$(FAULT_LOG) $(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -ne 0 ] && [ -s $(FAULT_LOG) ]; then \
	  echo "==== pytest exited with status $$rc; fatal-crash stacks from $(FAULT_LOG): ===="; \
	  grep -v -e '^Extension modules:' -e '/_pytest/' -e '/pluggy/' -e '/pytest/__main__.py' -e '<frozen runpy>' $(FAULT_LOG); \
	fi; \
	exit $$rc

bench: install
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

screenshot: install
	$(BIN)/python scripts/screenshot.py
