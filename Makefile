# Two commands on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DATA    ?= data/synthetic
RUNS    ?= runs
ACTORS  ?= 8
SEED    ?= 7
PORT    ?= 8501

.PHONY: setup demo test bench dashboard clean

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup: $(BIN)/.installed  ## create .venv from requirements.txt

demo: setup  ## synthetic corpus -> quick training -> bundle -> dashboard
	$(BIN)/python -m pipeline demo --data $(DATA) --runs $(RUNS) --actors $(ACTORS) --seed $(SEED)
	$(BIN)/streamlit run dashboard/app.py --server.port $(PORT)

test: setup  ## the whole suite (unit, integration, UI)
	$(BIN)/python -m pytest -q

bench: setup  ## benchmarks; figures land in bench/results/*.json
	$(BIN)/python -m bench

dashboard: setup
	$(BIN)/streamlit run dashboard/app.py --server.port $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache
