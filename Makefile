# Two commands on a fresh machine:
#   make demo   - venv, install, fetch openly licensed real music, run every stage, show results, write a report
#   make test   - venv, install (if needed), run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Reinstall when the dependency list changes (the stages' requirements.txt make their extras).
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml hatch_build.py etl/stages/*/requirements.txt shims/*/pyproject.toml scripts/install-llama-cpp.sh | sha256sum | cut -c1-12)
DEMO_DB    := data/demo.duckdb
DEMO_MUSIC := data/demo-music
DEMO_EXPORT := data/demo-export
DEMO_REPORT := data/demo-report

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml hatch_build.py $(wildcard etl/stages/*/requirements.txt) shims/madmom/pyproject.toml scripts/install-llama-cpp.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	scripts/install-llama-cpp.sh $(BIN)/python   # captions: built from source once, then a cached wheel
	# `all`: every stage's extra (its folder's requirements.txt, see hatch_build.py), ray and report.
	$(BIN)/python -m pip install --quiet -e '.[test,all]' ./shims/madmom
	$(BIN)/python -m pip install --quiet --no-deps 'basic-pitch==0.4.0'
	# --no-deps: its declared torchaudio does not work beside CPU torch (see etl/stages/aesthetics/requirements.txt).
	$(BIN)/python -m pip install --quiet --no-deps 'audiobox-aesthetics==0.0.4'
	rm -f $(VENV)/.installed-*
	touch $@

# Extra `etl run` options for the demo, e.g. DEMO_ARGS="--skip chords".
DEMO_ARGS ?=
demo: install
	BIN=$(BIN) DEMO_DB=$(DEMO_DB) DEMO_MUSIC=$(DEMO_MUSIC) DEMO_EXPORT=$(DEMO_EXPORT) DEMO_REPORT=$(DEMO_REPORT) \
		scripts/demo.sh $(DEMO_ARGS)

# Twice: in file order, then shuffled (pytest-randomly prints its seed; rerun one order with
# `pytest -p randomly --randomly-seed=N`), so a test that leans on another's leftovers fails.
# The shuffled pass skips the slow tests: they ran in the first.
test: install
	$(BIN)/python -m pytest -p no:randomly
	$(BIN)/python -m pytest -p randomly -m "not slow" -q

bench: install
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/beats.py
	$(BIN)/python bench/crops.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/query.py
	$(BIN)/python bench/captions.py
	$(BIN)/python bench/engine.py --noop-rerun --features
	$(BIN)/python bench/status.py
	$(BIN)/python bench/transcription.py
	$(BIN)/python bench/transcription_chords.py
	$(BIN)/python bench/chords.py
	$(BIN)/python bench/aesthetics.py
	$(BIN)/python bench/executors.py
	$(BIN)/python bench/multitrack.py

clean:
	rm -rf $(VENV) data
