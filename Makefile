PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
# ptychi requires torchvision; the only torchvision wheel here for the CPU torch is a CUDA build
# that fails to import (and then breaks `import lightning`). Remove one that cannot be imported:
# ptypinn supplies the one symbol pty-chi uses (src/ptypinn/engines/torchvision_shim.py).
	$(BIN)/python -c "import torchvision" 2>/dev/null || $(BIN)/pip uninstall --quiet --yes torchvision
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ptypinn study run --preset smoke --output study-output --resume

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) study-output
