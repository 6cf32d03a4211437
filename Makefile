# `make run`: install into .venv and simulate the default scenario.  `make app`: install the web app's extra and start
# it.  `make test`: lint and run every test (installs Debian's chromium for the report's and the app's browser tests
# when it is missing; the test extra brings Shiny and Playwright, which drives that chromium).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run app test bench clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.core
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

$(VENV)/.app: pyproject.toml $(VENV)/.core
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[app]'
	touch $@

run: $(VENV)/.core
	$(BIN)/cbcp-sim run

app: $(VENV)/.app
	$(BIN)/cbcp-sim app

# The browser tests (the report's pages, the web app) use headless Chromium (Debian's `chromium`), installed here when
# missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

test: $(VENV)/.test browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(VENV)/.test
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
