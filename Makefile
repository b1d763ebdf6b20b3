# Two commands: `make run` executes every chapter; `make test` runs the whole test suite.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: install install-colab run test test-colab clean-quick

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

# The unit tests and chapter 04 again, in a second environment with the versions Colab ships
# (.ci/colab-versions.txt: TensorFlow 2.20, Keras 3.13, OpenCV 5), on Python 3.13 where pyenv has it:
# requirements.txt admits them, and they once broke the TFLite export. CI runs it beside `make test` (.ci/run).
# Chapter 04 runs here with SKIP_TRAINING (the shipped models), so CI tests both of its paths.
COLAB_VENV ?= .venv-colab
COLAB_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3) python3)

$(COLAB_VENV)/.installed: requirements.txt .ci/colab-versions.txt
	test -x $(COLAB_VENV)/bin/python || $(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install --quiet -r requirements.txt -c .ci/colab-versions.txt
	touch $@

install-colab: $(COLAB_VENV)/.installed

test-colab: $(COLAB_VENV)/.installed
	$(COLAB_VENV)/bin/python -c "import sys, tensorflow, keras, cv2; print('Colab versions: Python', sys.version.split()[0], '| TensorFlow', tensorflow.__version__, '| Keras', keras.__version__, '| OpenCV', cv2.__version__)"
	HTR_QUICK=1 HTR_SKIP_TRAINING=1 HTR_ARTIFACTS_DIR=$(CURDIR)/artifacts/quick-colab $(COLAB_VENV)/bin/python -m pytest tests notebooks/04_training_and_prediction.ipynb --nbval-lax --nbval-current-env

clean-quick:
	rm -rf artifacts/quick
