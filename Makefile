# Setup and the two jobs the README starts with. `make demo` and `make test` create .venv on
# first use.
#
# llama-cpp-python is built from source, about 9 minutes on 2 cores, once per machine: the wheel
# is kept in $(WHEELS) and reused by every later setup. It is built portable (GGML_NATIVE=OFF):
# a -march=native build died with "Illegal instruction" on Q8_0/Q4_K models on our CI VMs, whose
# CPU advertises AMX and AVX-512.
# pip's own wheel cache ignores CMAKE_ARGS, so we build with --no-cache-dir into our own folder.
VENV ?= .venv
WHEELS ?= $(HOME)/.cache/slmkit/wheels
LLAMA_CPP := llama_cpp_python-0.3.36
PY := $(VENV)/bin/python
SLMKIT := $(VENV)/bin/slmkit
MODEL ?= smollm2-135m
QUANT ?= q4_k_m
OUT := out/$(MODEL)-gguf-$(QUANT)

# ninja prints "[17/140] /usr/bin/gcc …" per step: show it as "[ 12%]", once per percent, plus
# compiler errors ("error:", not the -Werror flags every command line carries) and the result.
BUILD_PROGRESS := awk '/^ *\[[0-9]+\/[0-9]+\]/ { split(substr($$1, 2), n, "/"); p = int(100 * n[1] / n[2]); \
  if (p != last) { printf "  [%3d%%]\n", p; last = p; fflush() } next } \
  / error:|^error|Successfully built|Successfully created/ { print; fflush() }'

.PHONY: setup demo test lint test-slow test-scale bench bench-scale clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if ! ls $(WHEELS)/$(LLAMA_CPP)-*.whl >/dev/null 2>&1; then \
	  echo "Building llama-cpp-python 0.3.36 from source (portable, ~9 minutes on 2 cores, once)..."; \
	  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" $(PY) -m pip wheel -v --no-deps --no-cache-dir \
	    -w $(WHEELS) llama-cpp-python==0.3.36 2>&1 | $(BUILD_PROGRESS) ; \
	  ls $(WHEELS)/$(LLAMA_CPP)-*.whl >/dev/null 2>&1 || { echo "llama-cpp-python build failed"; exit 1; }; \
	fi
	$(PY) -m pip install --progress-bar on --find-links $(WHEELS) -e ".[dev]"
	touch $@

demo: setup
	$(SLMKIT) convert $(MODEL) --target gguf --quant $(QUANT) --output $(OUT) --force
	$(SLMKIT) parity $(OUT) --report $(OUT).parity.json --junit $(OUT).parity.xml

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check cli data runtime converter recipes tests bench

test-slow: setup
	$(PY) -m pip install --quiet --find-links $(WHEELS) -e ".[dev,clients]"
	$(PY) -m pytest -m slow

test-scale: setup
	$(PY) -m pytest -m scale

bench: setup
	$(PY) bench/convert_gguf.py
	$(PY) bench/onnx_decode.py
	$(PY) bench/coreml_convert.py
	$(PY) bench/router_latency.py
	$(PY) bench/simulate_overhead.py

bench-scale: setup
	$(PY) bench/scale.py --parity

clean:
	rm -rf out .pytest_cache
