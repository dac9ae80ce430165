# thumbsearch: `make demo` then `make test` on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_HOME ?= demo-data

.PHONY: install demo test test-fast lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Offline, no API key: real photos made into YouTube-style thumbnails (yt-dlp layout),
# ingested through the same pipeline, then the neighbours of a few of them.
demo: install
	rm -rf $(DEMO_HOME)
	$(PY) -m indexer.samples $(DEMO_HOME)/thumbnails --variants 2
	THUMBSEARCH_HOME=$(DEMO_HOME) $(VENV)/bin/thumbsearch add $(DEMO_HOME)/thumbnails
	@for id in $$(head -n 3 $(DEMO_HOME)/thumbnails/originals.txt); do \
		echo; echo "== thumbsearch similar -k 4 -- $$id"; \
		THUMBSEARCH_HOME=$(DEMO_HOME) $(VENV)/bin/thumbsearch similar -k 4 -- $$id || exit 1; \
	done
	@echo; THUMBSEARCH_HOME=$(DEMO_HOME) $(VENV)/bin/thumbsearch stats

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench.ingest

clean:
	rm -rf $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
