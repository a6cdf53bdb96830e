# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export ZOO_DATA_DIR ?= $(abspath ../shared/data)
export TF_CPP_MIN_LOG_LEVEL ?= 2
PYTEST_ARGS ?=

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/zoo demo

test: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

# ruff's rule set [tool.ruff.lint], the package layers [tool.importlinter] and the type check of
# the public API [tool.mypy] are in pyproject.toml; docs/configuration.md must match zoo.options.
# .ci/run calls `make lint` before `make test`.
lint: $(STAMP)
	$(BIN)/ruff check zoo export serving tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m zoo.config_docs --check
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run_all.py

# System packages the MLflow tests use: PostgreSQL (a throwaway cluster as the tracking
# server's backend store) and Chromium (the UI test). Debian packages; skipped when present.
.PHONY: system-deps
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

clean:
	rm -rf $(VENV) runs mlruns mlflow.db demo_output
