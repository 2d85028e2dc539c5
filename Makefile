# Stratus: `make run` sets up and starts a stack; `make test` sets up and runs the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
GEN := services/core/gen
PROTOS := $(shell find protos -name '*.proto' | sort)
ARGS ?=

.PHONY: run test unit functional e2e protos check-protos lint buf-lint deps clean libvirtd guest

$(STAMP): pyproject.toml deploy/install-deps.sh
	bash deploy/install-deps.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

deps: $(STAMP)

# The libvirt driver is the default: a libvirtd and the tiny guest come first (`ARGS="--driver fake"` needs neither).
run: $(STAMP) libvirtd guest
	$(VENV)/bin/stratus up $(ARGS)

test: $(STAMP) check-protos lint libvirtd guest
	$(VENV)/bin/pytest -q -p no:cacheprovider tests

unit: $(STAMP)
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit

functional: $(STAMP)
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/functional

e2e: $(STAMP) libvirtd guest
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/e2e

protos: $(STAMP)
	bash deploy/gen-protos.sh $(GEN) >/dev/null

# Fails when the committed generated code differs from what `make protos` makes now.
check-protos: $(STAMP)
	@tmp=$$(mktemp -d) && bash deploy/gen-protos.sh $$tmp/gen && \
	if diff -r -x __pycache__ $$tmp/gen $(GEN) >/dev/null; then echo "generated protobuf code is fresh"; rm -rf $$tmp; \
	else diff -r -x __pycache__ $$tmp/gen $(GEN) | head -20; rm -rf $$tmp; \
	echo "generated protobuf code is stale: run 'make protos' and commit"; exit 1; fi

lint: $(STAMP) buf-lint
	$(VENV)/bin/ruff check services tests $(wildcard bench)
	$(VENV)/bin/mypy services tests $(wildcard bench/*.py)

# buf comes from npm; without npm on the machine the proto lint is skipped with a notice.
buf-lint:
	@if command -v npm >/dev/null; then \
	  test -x .tools/node_modules/.bin/buf || npm install --silent --prefix .tools @bufbuild/buf@1.75.0 >/dev/null; \
	  (cd protos && ../.tools/node_modules/.bin/buf lint) && echo "buf lint: clean"; \
	else echo "buf lint skipped: npm is not installed (apt-get install npm)"; fi

# A libvirtd serving qemu:///system (installs libvirt/QEMU when missing); no venv needed.
libvirtd:
	bash deploy/libvirtd.sh

# The tiny test guest build/guest/tiny.qcow2 (skipped when up to date); no venv needed.
guest:
	bash deploy/build-guest.sh build/guest

clean:
	rm -rf $(VENV) .tools
