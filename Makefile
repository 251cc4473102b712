# Two commands: `make book` builds the book, `make test` runs every test
# (`make book-fresh` rebuilds the book re-executing every notebook; `make lab` opens the
# chapters in JupyterLab).
# Both create .venv from requirements.txt first, and again whenever it is stale.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BOOK   := $(BIN)/jupyter-book build . -W -n --keep-going
# No progress bars in executed notebooks (adamlib.lab.population shows one interactively).
export ADAMLIB_PROGRESS=0

.PHONY: book book-fresh lab test test-lib test-notebooks test-notebooks-perturbed test-book test-pages benchmark clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# `book` renders the outputs stored in the notebooks (execute_notebooks: 'off' in
# _config.yml); `book-fresh` re-executes every chapter first, as a fresh clone would.
book: $(STAMP)
	$(BOOK)
	@echo "Book built: _build/html/index.html"

book-fresh: $(STAMP)
	rm -rf _build
	mkdir -p _build
	sed "s/execute_notebooks: 'off'/execute_notebooks: force/" _config.yml > _build/_config_fresh.yml
	$(BOOK) --config _build/_config_fresh.yml
	@echo "Book built with every notebook re-executed: _build/html/index.html"

# `lab` opens the chapters in JupyterLab from .venv, progress bars on (they are off in the
# executed notebooks). Options go in LAB_OPTS, e.g. `make lab LAB_OPTS="--no-browser --port=8890"`.
# (Jupyter refuses root unless told: containers and CI run as root.)
LAB_OPTS ?=
lab: $(STAMP)
	ADAMLIB_PROGRESS=1 $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
		--LabApp.default_url=/lab/tree/book/index.ipynb \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_OPTS)

test: test-lib test-notebooks test-notebooks-perturbed test-book test-pages

test-lib: $(STAMP)
	$(BIN)/python -m pytest -n 2 --doctest-modules --ignore=tests/browser tests adamlib

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --nbval book

# Every chapter again, its inputs (initial weights, data) moved by one ulp
# (ADAMLIB_PERTURB, adamlib/lab/perturb.py), against the same stored outputs: what this
# changes, another machine's rounding can change (README, "Reproducibility across machines").
test-notebooks-perturbed: $(STAMP)
	ADAMLIB_PERTURB=1 $(BIN)/python -m pytest -n 2 --dist loadfile --nbval book

# strict nbval has re-executed every notebook and compared its outputs; the build
# renders those stored outputs and checks the pages (references, roles, glue).
test-book: $(STAMP)
	rm -rf _build/html
	$(BOOK)

# the built pages in headless Chromium, offline: every page loads without a console
# error, and the interactive figures answer the keyboard (screenshots: _build/screenshots)
test-pages: $(STAMP)
	test -f _build/html/index.html || $(MAKE) test-book
	$(BIN)/python -m pytest -p no:cacheprovider tests/browser

benchmark: $(STAMP)
	$(BIN)/python benchmarks/numpy_step.py
	$(BIN)/python benchmarks/torch_step.py
	$(BIN)/python benchmarks/population.py

clean:
	rm -rf _build $(VENV)
