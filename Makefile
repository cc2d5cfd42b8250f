# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export KEDRO_DISABLE_TELEMETRY := true
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python

.PHONY: setup data demo train score bench test test-fast lint viz clean jars azurite-install azurite runs mlflow-ui jvm-archive

# uv installs the same packages as pip (same resolution, checked package for package) in a third of
# the time (28 s against 76 s from PyPI without a cache): the first step of every fresh machine and CI.
# Bytecode is compiled at install (pip does it, uv only when asked): where PYTHONDONTWRITEBYTECODE is
# set, as on this machine kind, nothing else ever writes it and every process would compile each module
# it imports again (a `kedro run`'s imports: 6.3 s instead of 3.0; CLI and own-class tests 192 -> 112 s).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[dev]"
	$(BIN)/python -m compileall -q src
	touch $@

setup: $(STAMP)

# Tile source: keeps data/01_raw/eurosat if it has tiles, else links ../shared/data/eurosat-sample,
# else downloads the official EuroSAT RGB archive (checksum verified).
data: setup
	$(BIN)/python -m aerial_kedro.data_setup

# JVM jars Spark needs beyond pyspark's own, from Maven Central, cached in .cache/jars:
# hadoop-azure (wasb://) and SynapseML (ONNXModel, LightGBM).
jars: setup
	bash scripts/fetch_jars.sh
	bash scripts/fetch_synapseml_jars.sh

# Azurite, the Azure Blob emulator, from npm into .cache/azurite; `make azurite` runs it for demos.
azurite-install:
	bash scripts/azurite.sh install

azurite: setup azurite-install
	bash scripts/azurite.sh run

train: data
	$(BIN)/kedro run --pipelines=train

# Land-use map of the Sentinel-2 scene in ../shared/data/rasters with the model `train` just wrote.
score: setup
	$(BIN)/kedro run --pipelines=score

# The main job on the embedded default: train on the tile source plus reference labels drawn on the
# Czech scene (coarse classes), score the scene, and assess the map on the labels training never saw.
LABELS := ../shared/data/labels/czech_west_labels.geojson
SCENE := ../shared/data/rasters/czech_s2_tci_20220319.tif
demo: data
	$(BIN)/kedro run --pipelines=train \
		--params=class_scheme=coarse,reference_labels=$(LABELS),reference_rasters=$(SCENE)
	$(BIN)/kedro run --pipelines=assess \
		--params=class_scheme=coarse,reference_labels=$(LABELS),score_source=$(SCENE)

# Throughput benchmarks: print figures and ratios (not tests).
bench: setup
	$(BIN)/python benchmarks/featurize.py
	$(BIN)/python benchmarks/score.py

# Test JVMs (Spark drivers started by the tests and their `kedro run`s) live seconds to minutes on
# two cores: the client JIT alone and the serial collector leave the cores to the work (a score run
# of 60 chips: 42 s instead of 54 s). Speed only; users' runs keep the JVM defaults.
# They also map a class-data-sharing archive of the classes a Spark driver loads (made once by
# scripts/spark_class_archive.py, JDK 13+ dynamic CDS) instead of reading them from ~250 jars: a
# local Spark session starts in 3.9 s instead of 6.4 s; the CLI, quiet-run and run-log tests take
# 157 s instead of 180 s. A missing or stale archive only costs that time (its warnings are off).
JVM_FAST := -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xlog:cds=off,cds+dynamic=off
CDS_ARCHIVE := $(CURDIR)/.cache/spark-cds.jsa
TEST_JVM := SPARK_SUBMIT_OPTS="$(JVM_FAST) -XX:SharedArchiveFile=$(CDS_ARCHIVE)"

jvm-archive: $(CDS_ARCHIVE)

$(CDS_ARCHIVE): $(STAMP)
	mkdir -p $(dir $@)
	SPARK_SUBMIT_OPTS="$(JVM_FAST) -XX:ArchiveClassesAtExit=$@" $(BIN)/python scripts/spark_class_archive.py

# Two pytest workers, each test module on one of them (--dist loadscope; each worker trains its
# own session project): a test run leaves a core idle much of the time (one Spark driver waiting on
# its JVM, subprocesses starting), two workers fill it. Measured on 2 cores: 952 s serial, 688 s
# with 2 workers. More workers than cores measured slower (and each holds a Spark driver's memory).
TEST_WORKERS ?= 2
test: data jars azurite-install jvm-archive
	$(TEST_JVM) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope tests

# The fast tier for the edit loop: domain code on small data, no pipeline runs, no servers.
test-fast: data
	$(TEST_JVM) $(BIN)/python -m pytest -q -m "not slow" tests

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# kedro-viz on 127.0.0.1:4141 (or VIZ_PORT); stopping make or the script by its PID stops the server too.
viz: setup
	exec env KEDRO=$(BIN)/kedro bash scripts/viz.sh --host 127.0.0.1 --port $(or $(VIZ_PORT),4141) --no-browser

# Run history: a table of MLflow runs, or the MLflow UI on 127.0.0.1:5000.
runs: setup
	$(BIN)/python -m aerial_kedro.runs

mlflow-ui: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/kedro mlflow ui

clean:
	rm -rf data/02_intermediate/* data/04_feature/* data/06_models/* data/07_model_output/* data/08_reporting/*
