"""Project settings: the config loader, the default environment and the hooks."""

from kedro.config import OmegaConfigLoader

from aerial_kedro.hooks import ParameterValidationHooks, SparkHooks

# Hooks run last-in-first-out: parameters are validated before Spark starts.
HOOKS = (SparkHooks(), ParameterValidationHooks())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "spark": ["spark*", "spark*/**"],
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    },
}
