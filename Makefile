# capspread — two commands do everything:  make run  |  make test
# Needs only Python >= 3.11, pip and make. uv is bootstrapped into .tools/ when it is missing.

PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
# never download a Python build: use the interpreter that is here
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test bench sample clean help

help:
	@echo "make run    install, then run the nightly pipeline offline on the embedded real-data sample"
	@echo "make test   install, then run the whole test suite"
	@echo "make bench  install, then run the scale benchmark (benchmarks/RESULTS.md)"

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

run: install
	$(VENV)/bin/capspread run

test: install
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

bench: install
	$(VENV)/bin/python -m benchmarks.run

sample: install
	$(VENV)/bin/python -m sources.sample.build

clean:
	rm -rf $(VENV) .tools .pytest_cache
