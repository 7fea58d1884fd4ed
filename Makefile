# buddylb — every target sets up what it needs first (a venv from pyproject.toml).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Wheels of the runtime dependencies: the install-from-wheel test (and the Containerfile's
# second stage) installs buddylb from them with --no-index, so tests need no network.
WHEELS := $(VENV)/wheels
# `requires build` / `requires run`: pyproject's build-system.requires / dependencies
REQUIRES = $(BIN)/python -c 'import sys, tomllib; d = tomllib.load(open("pyproject.toml", "rb")); \
	print("\n".join(d["build-system"]["requires"] if sys.argv[1] == "build" else d["project"]["dependencies"]))'
# modules also built as C extensions: read from setup.py's COMPILED and COMPILED_HTTP lists,
# the one place they are named (BUDDYLB_PURE=1 runs the .py sources)
COMPILED := $(shell grep -o '"src/buddylb/[^"]*\.py"' setup.py | tr -d '"')
BUILT := $(VENV)/.built

.PHONY: test demo bench soak fuzz clean venv dist

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip >/dev/null
	$(BIN)/pip install -q -e '.[test]'
	$(REQUIRES) build > $(VENV)/build-requires.txt
	$(BIN)/pip install -q 'build>=1.0,<2' -r $(VENV)/build-requires.txt
	$(REQUIRES) run > $(VENV)/requires.txt
	$(BIN)/pip wheel -q --wheel-dir $(WHEELS) -r $(VENV)/requires.txt
	touch $(STAMP)

# rebuilt whenever a compiled module's source or declarations change
$(BUILT): $(STAMP) setup.py $(COMPILED) $(wildcard src/buddylb/core/*.pxd src/buddylb/io/*.pxd src/buddylb/io/l7/*.pxd src/buddylb/http/*.pxd)
	$(BIN)/python setup.py -q build_ext --inplace 2>&1 | grep -v "performance hint" || true
	touch $(BUILT)

venv: $(BUILT)

# The suite on the compiled modules, then the HTTP layer's and io/'s tests on the sources.
test: $(BUILT)
	$(BIN)/python -m pytest
	BUDDYLB_PURE=1 $(BIN)/python -m pytest tests/http tests/io

demo: $(BUILT)
	$(BIN)/buddylb demo $(DEMO_ARGS)

bench: $(BUILT)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

soak: $(BUILT)
	$(BIN)/python -m soak.run $(SOAK_ARGS)

fuzz: $(STAMP)
	$(BIN)/pip install -q -e '.[fuzz]'
	$(BIN)/python -m fuzz.run $(FUZZ_ARGS)

# An sdist and a wheel in dist/ (the wheel is built from the sdist, so both are complete).
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

clean:
	rm -rf $(VENV) build dist src/*.egg-info
	find src -name '*.so' -delete; rm -f $(COMPILED:.py=.c)
