"""The trained models' names: one Kedro namespace per model, and what `train` hands to scoring."""

# One namespace per model; each needs a block of the same name in conf/base/parameters_modeling.yml.
# These run in `train`: plain Spark ML, so they work on any Spark 3.3+ without extra jars.
MODEL_NAMESPACES = ("logistic_regression", "random_forest")

# Opt-in models whose estimators live in SynapseML's jars (Spark 3.5 only, jars fetched by
# scripts/fetch_synapseml_jars.sh): trained and evaluated by the separate `lightgbm` pipeline,
# e.g. `kedro run --pipelines=train,lightgbm`, or `--pipelines=lightgbm` on existing features.
SYNAPSEML_MODEL_NAMESPACES = ("lightgbm",)

# Datasets `train` writes that score, change and assess read; they keep their global names
# outside the scoring namespaces.
TRAINED_INPUTS = frozenset({"scoring_model", "featurizer_onnx", "featurizer_spec"})
