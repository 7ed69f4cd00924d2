# The two set-up commands of the README. Each creates the virtual environment
# from pyproject.toml on first use (offline-safe: nothing downloads a model or data).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[train,test]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/edgedl pipeline --model cnn --out runs/demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
