# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export KEDRO_DISABLE_TELEMETRY := true
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python

.PHONY: setup data demo train test lint viz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(STAMP)

# Tile source: keeps data/01_raw/eurosat if it has tiles, else links ../shared/data/eurosat-sample,
# else downloads the official EuroSAT RGB archive (checksum verified).
data: setup
	$(BIN)/python -m aerial_kedro.data_setup

train: data
	$(BIN)/kedro run --pipelines=train

demo: train

test: data
	$(BIN)/python -m pytest -q tests

lint: setup
	$(BIN)/ruff check src tests benchmarks

viz: setup
	$(BIN)/kedro viz run --host 127.0.0.1 --port 4141 --no-browser

clean:
	rm -rf data/02_intermediate/* data/04_feature/* data/06_models/* data/07_model_output/* data/08_reporting/*
