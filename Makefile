# Two commands: `make book` builds the book, `make test` runs every test.
# Both create .venv from requirements.txt first, and again whenever it is stale.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BOOK   := $(BIN)/jupyter-book build . -W -n --keep-going
# No progress bars in executed notebooks (adamlib.lab.population shows one interactively).
export ADAMLIB_PROGRESS=0

.PHONY: book test test-lib test-notebooks test-book benchmark clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

book: $(STAMP)
	$(BOOK)
	@echo "Book built: _build/html/index.html"

test: test-lib test-notebooks test-book

test-lib: $(STAMP)
	$(BIN)/python -m pytest -n 2 --doctest-modules tests adamlib

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --nbval book

test-book: $(STAMP)
	rm -rf _build/html
	$(BOOK)

benchmark: $(STAMP)
	$(BIN)/python benchmarks/numpy_step.py
	$(BIN)/python benchmarks/torch_step.py

clean:
	rm -rf _build $(VENV)
