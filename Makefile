# tinymeter: the two commands of the README plus a benchmark target.
#   make demo   set up everything (Arm toolchain, venv, Python deps) and estimate the default model
#   make test   set up everything and run lint + the test suite
#   make test-fast  the inner loop: lint + the layer check + unit and host-kernel tests (no slow,
#               TensorFlow, hardware or emulated-kernel cases; two seeds per kernel test)
#   make bench  run the benchmarks and write JSON into bench-results/ (FUZZ=1: also the long fuzz)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tinymeter-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BOARD ?= nucleo-l4r5zi
PYTEST_ARGS ?=

.PHONY: demo test test-fast bench fuzz typecheck setup toolchain lint clean

toolchain:
	@if command -v arm-none-eabi-gcc >/dev/null 2>&1 && \
	    [ -f "$$(arm-none-eabi-gcc -print-file-name=libc_nano.a)" ] && \
	    [ -f "$$(arm-none-eabi-gcc -print-file-name=libstdc++_nano.a)" ]; then \
	  echo "Arm toolchain: $$(arm-none-eabi-gcc --version | head -n1)"; \
	else \
	  echo "Installing the Debian Arm toolchain (gcc-arm-none-eabi, libnewlib-arm-none-eabi, libstdc++-arm-none-eabi-newlib for the TFLM harness)"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib; \
	fi

$(STAMP): pyproject.toml setup.py constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "tinymeter needs Python 3.11 or newer ($(PYTHON) is $$($(PYTHON) -V 2>&1)); run make PYTHON=python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[tf,test]'
	touch $(STAMP)

setup: toolchain $(STAMP)

demo: setup
	$(BIN)/tinymeter estimate --board $(BOARD)

lint: setup
	$(BIN)/ruff check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

FAST_MARKERS := not slow and not tf and not hardware and not emulated
test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 -q -m "$(FAST_MARKERS)" --fast $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/run_all.py --out bench-results
	@if [ -n "$(FUZZ)" ]; then $(BIN)/python benchmarks/fuzz.py --count $(FUZZ_COUNT) --out bench-results; \
	else echo "long fuzz skipped (make bench FUZZ=1, or make fuzz)"; fi

# Opt-in long mutational fuzz through estimate: bench-results/fuzz.json (exit 1 on a traceback).
FUZZ_COUNT ?= 10000
fuzz: setup
	$(BIN)/python benchmarks/fuzz.py --count $(FUZZ_COUNT) --out bench-results

# mypy over the package as installed (also a test: tests/project/test_typecheck.py).
typecheck: setup
	$(BIN)/python tools/typecheck.py

clean:
	rm -rf build bench-results .pytest_cache .ruff_cache
