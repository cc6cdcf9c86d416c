# Two commands on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DATA    ?= data/synthetic
RUNS    ?= runs
ACTORS  ?= 8
SEED    ?= 7
PORT    ?= 8501
ADDRESS ?= 127.0.0.1
SHARED  ?= ../shared/data

.PHONY: setup demo test bench dashboard real clean

$(BIN)/.installed: requirements.txt requirements-encoder.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements-encoder.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup: $(BIN)/.installed  ## create .venv from requirements.txt

demo: setup  ## synthetic corpus -> quick training -> bundle -> dashboard
	$(BIN)/python -m pipeline demo --data $(DATA) --runs $(RUNS) --actors $(ACTORS) --seed $(SEED)
	$(BIN)/streamlit run dashboard/app.py --server.port $(PORT) --server.address $(ADDRESS)

# Test files run in parallel, one worker per core up to 4 (pytest-xdist): whole files go to
# one worker (their module fixtures, such as a served app, are built once). 3.5-11.6 min on
# 2 cores, 17-18 min in one process (README, Development).
TEST_WORKERS ?= auto

test: setup  ## the whole suite (unit, integration, UI)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

real: setup  ## retrain bundles/real from real corpora in $(SHARED) (docs/real_models.md)
	# the voice (issue 18): Whisper base blocks 1-3 (layer average) + eGeMAPS, training speakers' subspace projected
	# out, logistic regression; speaker folds, leave-one-corpus-out and
	# the model trained on all (none, session, neutral); the reference recipe on the same folds
	$(BIN)/python -m pipeline run configs/real_voice.yaml --out record
	# the face: FER2013 train, two cosine cycles (record/real_video; weights in $(RUNS)/real_video)
	$(BIN)/python -m pipeline train-faces --root $(SHARED)/fer2013/train --out $(RUNS)/real_video --epochs 30
	$(BIN)/python -m pipeline train-faces --root $(SHARED)/fer2013/train --out $(RUNS)/real_video --epochs 16 \
	    --learning-rate 1e-3 --variant face_cnn_warm --init-from $(RUNS)/real_video/face_cnn/holdout-1/model.keras
	# issue 21: the mirrored view and one temperature, measured on the same validation split
	$(BIN)/python -m pipeline tune-faces --model $(RUNS)/real_video/face_cnn_warm/holdout-1/model.keras \
	    --root $(SHARED)/fer2013/train --out $(RUNS)/real_video --base face_cnn_warm --views flip --calibration temperature
	$(BIN)/python -m pipeline export --name real --out bundles/real --audio record/real_voice/final \
	    --audio-calibrated session=record/real_voice/final_session \
	    --audio-calibrated neutral=record/real_voice/final_neutral \
	    --video "$(RUNS)/real_video/face_cnn_warm+flip+temperature" --fusion-rule reliability --card configs/cards/real.yaml

bench: setup  ## benchmarks; figures land in bench/results/*.json
	$(BIN)/python -m bench

dashboard: setup
	$(BIN)/streamlit run dashboard/app.py --server.port $(PORT) --server.address $(ADDRESS)

clean:
	rm -rf $(VENV) .pytest_cache
