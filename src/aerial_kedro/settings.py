"""Project settings: the config loader, the default environment and the hooks."""

# First: silences known third-party warnings before Kedro imports plugins, MLflow and pipelines.
import aerial_kedro.quiet  # noqa: F401, I001

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from aerial_kedro.blob.preflight import BlobPreflightHooks
from aerial_kedro.hooks import ParameterValidationHooks, SparkHooks
from aerial_kedro.progress import FitHeartbeatHooks
from aerial_kedro.run_summary import RunSummaryHooks
from aerial_kedro.tracking.hooks import RunTrackingHooks, SessionScopedMlflowHook
from aerial_kedro.tracking.resolvers import required_env
from aerial_kedro.train_lock import TrainLockHooks

# Hooks run last-in-first-out, so `before_pipeline_run` goes: parameters are validated, the blob
# containers a run uses are checked (fails in seconds when Azurite/the account is unreachable), Spark
# starts, kedro-mlflow opens the MLflow run, RunTrackingHooks log into it. kedro-mlflow is
# registered here instead of through its entry point (disabled below) to get that order: a bad
# parameter or a Spark start-up failure then leaves no dangling "running" MLflow run behind.
# RunSummaryHooks come first, so they note the MLflow run kedro-mlflow opened; they print what the
# run wrote and its headline figures as the run's last lines. FitHeartbeatHooks log "still fitting
# <model>" every 30 s while a classifier fits.
HOOKS = (
    RunSummaryHooks(),
    FitHeartbeatHooks(),
    RunTrackingHooks(),
    SessionScopedMlflowHook(),
    SparkHooks(),
    TrainLockHooks(),  # called before SparkHooks, after the parameter and Blob checks
    BlobPreflightHooks(),
    ParameterValidationHooks(),
)
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "spark": ["spark*", "spark*/**"],
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
        "mlflow": ["mlflow*", "mlflow*/**"],
    },
    # An environment's mlflow.yml overrides single keys of conf/base/mlflow.yml. Parameters too:
    # with Kedro's default (destructive) merge, an environment holding any parameters file
    # (conf/azurite) loses the rest of a block a nested `--params=random_forest.classifier.
    # hyperparameters.numTrees=20` touches (its `type` included), and the run is refused.
    "merge_strategy": {"mlflow": "soft", "parameters": "soft"},
}

# ${required_env:NAME} (conf/hdinsight/mlflow.yml), registered with OmegaConf's current API:
# CONFIG_LOADER_ARGS["custom_resolvers"] would go through its deprecated register_new_resolver.
# ${project_path:} is registered per session by RunTrackingHooks.
OmegaConf.register_resolver("required_env", required_env, replace=True)
