# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench claims mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/loadbench run scenarios/gather.yaml

test: $(STAMP)
	$(BIN)/ruff check loadbench target_app tests bench
	$(BIN)/python -m pytest -q -n 2  # two workers: most tests wait on loopback windows

lint: $(STAMP)
	$(BIN)/ruff check loadbench target_app tests bench

bench: $(STAMP)
	$(BIN)/python bench/generator.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/flows.py
	$(BIN)/python bench/flow_cpu.py

# Mutation testing (not in CI: minutes, not seconds). Modules and tests: [tool.mutmut] in
# pyproject.toml. Survivors: `$(BIN)/mutmut results`, then `$(BIN)/mutmut show NAME`.
mutate: $(STAMP)
	rm -rf mutants
	nice -n 10 $(BIN)/mutmut run --max-children 2
	$(BIN)/python bench/mutation_score.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache mutants
