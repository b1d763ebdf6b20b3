# Two commands: `make run` executes every chapter; `make test` runs the whole test suite.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: install run test clean-quick

$(VENV)/.installed: requirements.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

# Executes the chapters top to bottom, in place, at full size, on the embedded default
# (or on IAM, see the README): leaves the executed notebooks and artifacts/.
run: install
	$(PYTHON) -m jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=-1 notebooks/[0-9]*.ipynb

# Unit tests of utils, then every chapter under nbval, in quick mode.
test: install
	HTR_QUICK=1 $(PYTHON) -m pytest tests notebooks --nbval-lax --nbval-current-env

clean-quick:
	rm -rf artifacts/quick
