# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing, install meshmpc (C core built) and apps/credit,
# then run the main job or the whole suite.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out/demo

.PHONY: demo test bench install build lint typecheck clean

demo: build
	$(VENV)/bin/meshmpc-credit demo --out $(OUT)

test: build
	$(PY) -m pytest -q

bench: build
	$(VENV)/bin/meshmpc bench all --json

lint: build
	$(VENV)/bin/ruff check src apps bench tests
	$(VENV)/bin/mypy

install: $(STAMP)

# (Re)install dependencies and both packages when the packaging files change.
$(STAMP): pyproject.toml setup.py apps/credit/pyproject.toml
	@# csrc/he.c links GMP: install its header (libgmp-dev) via apt when missing and root.
	@test -f /usr/include/gmp.h -o -f /usr/include/$$(uname -m)-linux-gnu/gmp.h \
	  || { [ "$$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q libgmp-dev; } \
	  || { echo "GMP headers missing: install libgmp-dev (apt) or gmp-devel (dnf)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=68" wheel "Cython>=3.0" "numpy>=1.26"
	$(PY) -m pip install -q --no-build-isolation -e ".[dev]" -e apps/credit
	touch $(STAMP)

# Recompile the C core whenever csrc/ or the Cython bindings changed (no-op otherwise).
build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

clean:
	rm -rf build src/meshmpc/*.so src/meshmpc/_core.c out
