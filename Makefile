# Two commands for a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: venv demo test clean-cache

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(VENV)/.installed

## Generate the demo corpus, precompute features and train one model on it.
demo: venv
	$(PY) -m crema_exp.train experiment=demo

## Run the test suite.
test: venv
	$(PY) -m pytest -q

clean-cache:
	rm -rf cache outputs
