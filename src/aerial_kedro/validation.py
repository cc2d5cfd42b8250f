"""Checks a user can trip (bad parameter, missing folder), run before Spark starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aerial_kedro.featurizers.registry import FEATURIZERS
from aerial_kedro.pipelines.modeling.classifiers import CLASSIFIERS
from aerial_kedro.pipelines.modeling.pipeline import MODEL_NAMESPACES


class ParameterError(ValueError):
    """A parameter value that cannot work; the message names the key and what is allowed."""


def validate_run(params: dict[str, Any], pipeline_inputs: set[str]) -> None:
    """Validate the parameters a pipeline will use; raise ``ParameterError`` on the first problem."""
    _check_choice("featurizer", params.get("featurizer"), FEATURIZERS)
    if params.get("featurizer") == "onnx_file":
        onnx_file = params.get("featurization", {}).get("onnx_file", {})
        if not onnx_file.get("path"):
            raise ParameterError(
                "featurization.onnx_file.path must name an .onnx file when featurizer=onnx_file"
            )
    ingestion = params.get("ingestion", {})
    _check_fraction("ingestion.sample_frac", ingestion.get("sample_frac"), allow_one=True)
    _check_fraction("ingestion.test_fraction", ingestion.get("test_fraction"), allow_one=False)
    for namespace in MODEL_NAMESPACES:
        classifier = params.get(namespace, {}).get("classifier", {})
        _check_choice(f"{namespace}.classifier.type", classifier.get("type"), tuple(CLASSIFIERS))
    if "raw_tiles" in pipeline_inputs:
        _check_tiles_dir(params.get("tiles_dir"))
    if "params:scoring" in pipeline_inputs:
        # Imported here: the scoring nodes import ParameterError from this module.
        from aerial_kedro.pipelines.scoring.nodes import validate_scoring_params

        validate_scoring_params(params.get("score_source"), params.get("scoring", {}))


def _check_choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ParameterError(f"{key}: '{value}' is not allowed; allowed values: {', '.join(allowed)}")


def _check_fraction(key: str, value: Any, allow_one: bool) -> None:
    upper = "1]" if allow_one else "1)"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{key}: '{value}' is not a number in (0, {upper}") from None
    if not (0.0 < number < 1.0 or (allow_one and number == 1.0)):
        raise ParameterError(f"{key}: {value} is outside (0, {upper}")


def _check_tiles_dir(tiles_dir: Any) -> None:
    if not tiles_dir:
        raise ParameterError("tiles_dir: not set; pass --params=tiles_dir=PATH (a folder of class folders)")
    if "://" in str(tiles_dir):
        return  # remote stores are checked by Spark when it lists them
    path = Path(str(tiles_dir))
    if not path.is_dir():
        raise ParameterError(f"tiles_dir: '{tiles_dir}' is not a folder (expected class sub-folders of tiles)")
    if not any(child.is_dir() for child in path.iterdir()):
        raise ParameterError(f"tiles_dir: '{tiles_dir}' has no class sub-folders")
