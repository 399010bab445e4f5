# The commands the README names. `make test` is what CI runs (through .ci/run).
# Lambda's runtime is Python 3.13, and so is .venv's: a pyenv install of it if there is one, else
# a uv-managed one, else python3.13 on PATH; `make install PYTHON313=/path/to/python3.13` names one.
PYTHON313 ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13) \
	$(shell uv python find --managed-python --no-python-downloads 3.13 2>/dev/null) $(shell command -v python3.13))
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
# What `make install` installs: every package pinned, with the sha256 of each of its files
# (made from requirements-dev.txt by `make lock`).
LOCK := requirements-dev.lock
INSTALLED := $(VENV)/.installed

.DEFAULT_GOAL := install
.PHONY: install lock hooks prerequisites contract-deps demo local test unit integration contract lint typecheck \
	validate build bench clean

# Prism (pinned in local/package.json), for the contract tests, and Twilio's OpenAPI description, which
# the local Twilio simulator validates against, extracted from the pinned npm package by
# `python -m local.prism fetch-spec` (local/prism.py).
PRISM_STAMP := local/node_modules/.package-lock.json
TWILIO_SPEC := local/spec/twilio_api_v2010.json
PORT ?= 3000

# What the machine must provide, checked before anything is installed: every one missing is named,
# with how to get it. Python 3.13 while .venv has none that runs; Node.js where npm is needed.
NEEDS := python
contract-deps demo local test contract: NEEDS := python node

define PYTHON313_HELP
Lambda's runtime is Python 3.13, and .venv is made with it. Install it with one of:
  pyenv install 3.13                           (https://github.com/pyenv/pyenv)
  uv python install 3.13                       (https://docs.astral.sh/uv/)
  sudo apt install python3.13 python3.13-venv  (Debian 13, Ubuntu 25.04 or later)
  brew install python@3.13                     (macOS, with Homebrew)
then run make again, or name the interpreter: make install PYTHON313=/path/to/python3.13
endef
define NODE_HELP
Node.js (npm) fetches Twilio's OpenAPI description, which the local stack's Twilio simulator
validates against, and runs Prism for the contract tests (make demo, make local, make contract, make test).
Install Node.js 20 or later (the LTS release), npm included, with one of:
  the installer from https://nodejs.org
  nvm install --lts                            (https://github.com/nvm-sh/nvm)
  sudo apt install nodejs npm                  (Debian 13, Ubuntu 24.10 or later; older ones package Node.js 18)
  brew install node                            (macOS, with Homebrew)
then run make again.
endef
prerequisites: export PYTHON313_HELP := $(PYTHON313_HELP)
prerequisites $(PRISM_STAMP): export NODE_HELP := $(NODE_HELP)

# Names what is missing of Node.js and npm, with how to get them, and fails; else does nothing.
NODE_CHECK = missing=$$(for tool in node npm; do command -v $$tool >/dev/null || printf ' %s' $$tool; done); \
	[ -z "$$missing" ] || { printf 'error: Node.js with npm not found (not on PATH:%s)\n%s\n' "$$missing" "$$NODE_HELP" >&2; false; }

prerequisites:
	@ok=true; version() { "$$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }; \
	if venv=$$(version $(BIN)/python); then \
		[ "$$venv" = 3.13 ] || { echo "error: $(VENV) is Python $$venv, not 3.13: rm -rf $(VENV), then make again" >&2; ok=false; }; \
	else \
		python='$(strip $(PYTHON313))'; problem=; \
		if [ -z "$$python" ]; then problem='Python 3.13 not found (no pyenv or uv install of it, no python3.13 on PATH)'; \
		elif ! found=$$(version "$$python"); then problem="PYTHON313=$$python does not run"; \
		elif [ "$$found" != 3.13 ]; then problem="PYTHON313=$$python is Python $$found, not 3.13"; fi; \
		[ -z "$$problem" ] || { printf 'error: %s\n%s\n' "$$problem" "$$PYTHON313_HELP" >&2; ok=false; }; \
	fi; \
	case ' $(NEEDS) ' in *' node '*) $(NODE_CHECK) || ok=false;; esac; \
	$$ok

# pip first, as locked: the one Python ships (24.2 with 3.13.0) takes a third longer over the rest.
$(BIN)/python: | prerequisites
	$(PYTHON313) -m venv $(VENV)
	sed -n '/^pip==/,/[^\\]$$/p' $(LOCK) | $(BIN)/python -m pip install --quiet --require-hashes -r /dev/stdin

# The pins of requirements-dev.txt (and of the files it includes) that the lock does not have.
define LOCK_CHECK
import pathlib, re, sys
def pins(path):
    found = {}
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
        elif m := re.match(r"([A-Za-z0-9][\w.-]*)(\[[^]]*\])?\s*(==\s*([^\s;\\]+))?", line):
            found[re.sub(r"[-_.]+", "-", m[1]).lower()] = (m[4], path)
    return found
wanted, locked = pins(pathlib.Path(sys.argv[1])), pins(pathlib.Path(sys.argv[2]))
missing = [f"{name}=={version} ({path})" if version else f"{name} ({path})"
           for name, (version, path) in wanted.items() if name not in locked or version not in (None, locked[name][0])]
if missing:
    sys.exit(f"error: {sys.argv[2]} lacks what {sys.argv[1]} asks for:\n  " + "\n  ".join(missing)
             + "\nRun `make lock` (it takes seconds), then make again; commit the lock with its input.")
endef
$(INSTALLED): export LOCK_CHECK := $(LOCK_CHECK)

install: $(INSTALLED)  ## dev tools and the layer's runtime dependencies in .venv (Python 3.13), as locked

$(INSTALLED): $(LOCK) requirements-dev.txt layers/twilio_messaging/requirements.txt | $(BIN)/python
	@$(BIN)/python -c "$$LOCK_CHECK" requirements-dev.txt $(LOCK)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	@touch $@

lock: | $(BIN)/python  ## requirements-dev.lock from requirements-dev.txt (make lock LOCKFLAGS=--upgrade: the newest allowed)
	@[ -x $(BIN)/uv ] || $(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/uv pip compile --quiet --universal --python-version 3.13 --generate-hashes \
		--custom-compile-command 'make lock' $(LOCKFLAGS) --output-file $(LOCK) requirements-dev.txt

hooks: install  ## git hooks: ruff and mypy before each commit, as `make lint typecheck` (.pre-commit-config.yaml)
	$(BIN)/pre-commit install

contract-deps: $(PRISM_STAMP) $(TWILIO_SPEC)  ## Prism and Twilio's OpenAPI description (npm), for the local stack and the contract tests

$(PRISM_STAMP): local/package.json local/package-lock.json | prerequisites
	@$(NODE_CHECK)
	npm ci --prefix local --no-audit --no-fund --loglevel=error
	@touch $@

$(TWILIO_SPEC): local/prism.py | install
	$(BIN)/python -m local.prism fetch-spec --force

demo: install contract-deps  ## the local stack up, the product used through its HTTP API, everything stopped
	$(BIN)/python -m local.demo --port $(PORT)

local: install contract-deps  ## the local stack on 127.0.0.1:$(PORT) until Ctrl-C, with commands to try
	$(BIN)/python -m local.stack --port $(PORT)

test: install contract-deps lint typecheck  ## lint, type checks and every test suite
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

integration: install
	$(BIN)/python -m pytest tests/integration

contract: install contract-deps
	$(BIN)/python -m pytest tests/contract

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy layers functions local

validate: install  ## sam validate with cfn-lint
	$(BIN)/sam validate --lint

build: install  ## sam build (needs python3.13 on PATH: the venv provides it), then a check of the built layer
	$(BIN)/sam build
	$(BIN)/python scripts/check_layer_build.py

bench: build  ## every benchmark in bench/ (docs/performance.md); a long run: minutes
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/warm_overhead.py
	$(BIN)/python bench/bulk.py
	$(BIN)/python bench/signature.py
	$(BIN)/python bench/size.py
	$(BIN)/python bench/campaign.py

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
