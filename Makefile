# jp_primary: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint openapi migration bench clean

$(STAMP): pyproject.toml setup.py
	@sh scripts/check-prerequisites.sh "$(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## Install, migrate the embedded database (./var) and serve on http://127.0.0.1:8901
run: install
	$(BIN)/jp-primary migrate
	$(BIN)/jp-primary serve

## Install and run everything CI runs: lint, format, types, the whole test suite
test: install lint
	@sh scripts/ensure-gridftp.sh
	bash scripts/ensure-voms-clients.sh
	@sh scripts/ensure-chromium.sh
	$(BIN)/python -m pytest

## Lint, format, types, and the layers (import-linter contracts in pyproject.toml)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check jp_primary migrations tests bench setup.py
	$(BIN)/mypy
	$(BIN)/lint-imports

## Run every benchmark in bench/ and print one table (QUICK=1: small sizes, a few minutes;
## ONLY=load,upload: a subset). Installs wrk and starts PostgreSQL if missing.
bench: install
	sh scripts/ensure-wrk.sh
	bash scripts/ensure-postgres.sh
	$(BIN)/python bench/run_all.py $(if $(filter 1 yes true,$(QUICK)),--quick) $(if $(ONLY),--only $(ONLY))

## Regenerate the committed OpenAPI document
openapi: install
	$(BIN)/jp-primary openapi > openapi/openapi.json

## Generate a migration from the model changes into migrations/versions/: make migration MSG="add feeds"
migration: install
	@test -n "$(MSG)" || { echo 'usage: make migration MSG="what changed"' >&2; exit 2; }
	mkdir -p var
	rm -f var/migration-scratch.sqlite
	$(BIN)/python -c 'import sys; from alembic import command; from jp_primary.db.migrate import alembic_config, upgrade; url = "sqlite:///var/migration-scratch.sqlite"; upgrade(url); command.revision(alembic_config(url), message=sys.argv[1], autogenerate=True)' "$(MSG)"

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
