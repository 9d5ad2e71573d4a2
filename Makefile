# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing, install meshmpc (C core built) and apps/credit,
# then run the main job or the whole suite.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out/demo

.PHONY: demo test bench install build lint typecheck clean system-deps runtime-deps deb-install fuzz console console-test

# Debian packages: libsodium23 (the system libsodium with ristretto255, for the OPRF kernels)
# for everything; a PostgreSQL server for the node tests; libgcrypt20 for fast SM4-GCM in
# the gm link suite (which falls back to OpenSSL without it); Chromium and a CJK font for the
# console's browser tests. Installed when missing and running as
# root (as CI does); otherwise the set-up says which command installs them.
DEB_RUNTIME := libsodium23
DEB_TEST := postgresql libgcrypt20 chromium fonts-wqy-microhei softhsm2
DEB_BENCH := hey wrk

demo: build console
	$(VENV)/bin/meshmpc-credit demo --out $(OUT)
	$(VENV)/bin/meshmpc-supervision demo --banks 5 --loans 100000 --out $(OUT)/supervision

test: build console system-deps
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory console-test

# The web console (console/, Vite + React): `npm ci` from the lockfile, then built into
# src/meshmpc/platform/console_dist (served by the node at /). Rebuilt when its sources change;
# without npm the node serves a page saying how to build it, and the browser tests skip.
CONSOLE_DIST := src/meshmpc/platform/console_dist/index.html
CONSOLE_DEPS := console/node_modules/.installed
CONSOLE_SRC  := $(shell find console/src -type f 2>/dev/null) console/index.html \
                console/vite.config.ts console/tsconfig.json

console: $(CONSOLE_DIST)

$(CONSOLE_DEPS): console/package.json console/package-lock.json
	@if command -v npm >/dev/null; then cd console && npm ci --no-audit --no-fund && touch node_modules/.installed; \
	else echo "note: npm not found (apt-get install -y nodejs npm); the console is not built"; fi

$(CONSOLE_DIST): $(CONSOLE_DEPS) $(CONSOLE_SRC)
	@if [ -f $(CONSOLE_DEPS) ]; then cd console && npm run build; \
	else echo "note: console not built (needs npm); the node serves a page saying so"; fi

console-test: $(CONSOLE_DEPS)
	@if [ -f $(CONSOLE_DEPS) ]; then cd console && npm test; \
	else echo "note: console unit tests NOT RUN: npm not found (apt-get install -y nodejs npm)"; fi

system-deps: runtime-deps
	@$(MAKE) --no-print-directory deb-install PKGS="$(DEB_TEST)"

runtime-deps:
	@$(MAKE) --no-print-directory deb-install PKGS="$(DEB_RUNTIME)"

deb-install:
	@missing=""; for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing Debian packages:$$missing (apt-get install -y$$missing);" \
	    "the tests that need them will be skipped"; fi; fi

bench: build
	@$(MAKE) --no-print-directory deb-install PKGS="$(DEB_BENCH)"
	$(VENV)/bin/meshmpc bench all --json

# ruff and mypy read the sources and src/meshmpc/_core.pyi: no need to rebuild the C core
# (rebuilding it in place under a running process that has it loaded is unsafe).
lint: install
	$(VENV)/bin/ruff check src apps bench tests
	$(VENV)/bin/mypy

# Coverage-guided fuzzing (atheris) of every target in tests/fuzz/targets/, FUZZ_SECONDS each;
# new inputs join tests/fuzz/corpus/<target>/, which `make test` replays.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz: build
	$(PY) tests/fuzz/run.py --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

install: $(STAMP)

# (Re)install dependencies and both packages when the packaging files change.
$(STAMP): pyproject.toml setup.py apps/credit/pyproject.toml apps/supervision/pyproject.toml
	@# csrc/he.c links GMP: install its header (libgmp-dev) via apt when missing and root.
	@test -f /usr/include/gmp.h -o -f /usr/include/$$(uname -m)-linux-gnu/gmp.h \
	  || { [ "$$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q libgmp-dev; } \
	  || { echo "GMP headers missing: install libgmp-dev (apt) or gmp-devel (dnf)"; exit 1; }
	@# csrc/he_mont.c links OpenSSL's libcrypto (BIGNUM): its headers are libssl-dev.
	@test -f /usr/include/openssl/bn.h \
	  || { [ "$$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q libssl-dev; } \
	  || { echo "OpenSSL headers missing: install libssl-dev (apt) or openssl-devel (dnf)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=68" wheel "Cython>=3.0" "numpy>=1.26"
	$(PY) -m pip install -q --no-build-isolation -e ".[dev]" -e "apps/credit[test]" -e "apps/supervision[test]"
	touch $(STAMP)

# Recompile the C core whenever csrc/ or the Cython bindings changed (no-op otherwise).
build: $(STAMP) runtime-deps
	$(PY) setup.py -q build_ext --inplace

clean:
	rm -rf build src/meshmpc/*.so src/meshmpc/_core.c out src/meshmpc/platform/console_dist
