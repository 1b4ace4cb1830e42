PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.skrel-installed

.PHONY: install demo test test-core bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,test]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/skrel demo

test: install
	$(PY) -m pytest -q -m "not slow" tests

# the light core: `pip install .` without extras, in a virtual environment of its own
CORE_VENV := .venv-core
test-core:
	test -x $(CORE_VENV)/bin/python || $(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/python -m pip install -q --upgrade pip
	$(CORE_VENV)/bin/python -m pip install -q . pytest
	$(CORE_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/core

bench: install
	$(PY) benchmarks/f1.py

clean:
	rm -rf $(VENV) $(CORE_VENV) build *.egg-info
