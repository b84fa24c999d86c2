# LCI-777 — every target sets itself up: a fresh machine needs only Python >= 3.11 and make.
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
BASE    := $(VENV)/.installed-base
BOARD   ?= rp2
PORT    ?=
BUILD   := build

.PHONY: setup test pytest demo serve browser firmware flash hil bench lint soak clean

# setuptools' editable build prints a banner about folders shadowing the package (none here: the
# packages are the folders); it says nothing a user of the demo can act on
QUIET_BUILD := PYTHONWARNINGS="ignore:Editable installation"

# the project alone (what `make demo` and `make serve` need) ...
$(BASE): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(QUIET_BUILD) $(PY) -m pip install --quiet -e .
	@touch $(BASE)

# ... and with the dev extras: test, lint and firmware tools
$(STAMP): $(BASE)
	$(QUIET_BUILD) $(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## setup: create .venv and install the project with its dev extras
setup: $(STAMP)

## test: the whole suite — mpy-cross over the core, lint, then pytest (CPython and MicroPython runs)
test: $(STAMP) firmware lint pytest

pytest: $(STAMP) browser
	$(PY) -m pytest -m 'not soak' $(PYTEST_ARGS)

## browser: the system Chromium the portal's browser tests drive (installed when root can)
browser:
	@command -v chromium >/dev/null || test -n "$$LCI_CHROMIUM" || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && apt-get install -y -q chromium chromium-driver; \
	  else \
	    echo "the portal's browser tests need Chromium: run  sudo apt-get install -y chromium chromium-driver" >&2; \
	    exit 1; \
	  fi; }

## soak: long soak and fuzz runs, outside the default suite
soak: $(STAMP)
	$(PY) -m pytest -m soak $(PYTEST_ARGS)

## firmware: compile firmware/ and protocol/ to .mpy in build/ and print the bundle size
firmware: $(STAMP)
	$(PY) -m host_tools.dev.mpybuild --out $(BUILD)/mpy

## flash: copy the .mpy bundle to a board with mpremote and reset it (BOARD=rp2; PORT= found by USB id when left out)
flash: firmware
	$(PY) -m host_tools.dev.flash --port '$(PORT)' --board $(BOARD) --bundle $(BUILD)/mpy

## hil: the HIL suite against one target: PORT=/dev/ttyACM0, socket://HOST:PORT, unix or sim
##      (a comma list works too); HIL_KEYS=DIR names the keys a board was provisioned with
hil: firmware
	@test -n '$(PORT)' || { echo "hil: give the target: make hil PORT=/dev/ttyACM0 [HIL_KEYS=~/.lci777] (or PORT=unix)"; exit 2; }
	$(PY) -m pytest tests/hil -m 'not soak' --device='$(PORT)' $(if $(HIL_KEYS),--hil-keys '$(HIL_KEYS)') $(PYTEST_ARGS)

## lint: ruff over everything; mypy over the core against the MicroPython stubs
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m host_tools.dev.corecheck

## bench: every benchmark, readable figures
bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

## demo: the main job, end to end on the simulator
demo: $(BASE)
	$(PY) -m sim.demo

## serve: the client portal on a fresh demo database (one client in each state); prints the logins
serve: $(BASE)
	$(VENV)/bin/lci-server web serve --demo

clean:
	rm -rf $(BUILD) .pytest_cache .hypothesis .mypy_cache .ruff_cache
