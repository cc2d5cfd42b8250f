"""Checks a user can trip (bad parameter, missing folder), run before Spark starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aerial_kedro.errors import ParameterError
from aerial_kedro.featurizers.registry import FEATURIZERS
from aerial_kedro.pipelines.modeling.classifiers import CLASSIFIERS
from aerial_kedro.pipelines.modeling.pipeline import MODEL_NAMESPACES
from aerial_kedro.pipelines.scoring.settings import ScoringSettings

__all__ = ["ParameterError", "validate_run"]  # ParameterError lives in aerial_kedro.errors


def validate_run(params: dict[str, Any], pipeline_inputs: set[str]) -> None:
    """Validate the parameters a pipeline will use; raise ``ParameterError`` on the first problem."""
    _check_choice("featurizer", params.get("featurizer"), FEATURIZERS)
    if params.get("featurizer") == "onnx_file":
        onnx_file = params.get("featurization", {}).get("onnx_file", {})
        if not onnx_file.get("path"):
            raise ParameterError(
                "featurization.onnx_file.path must name an .onnx file when featurizer=onnx_file"
            )
    if str(params.get("featurizer", "")).startswith("efficientnet_lite"):
        from aerial_kedro.featurizers.efficientnet_lite import parse_options

        try:
            parse_options(params.get("featurization", {}).get("options"))
        except ValueError as error:
            raise ParameterError(str(error)) from None
    ingestion = params.get("ingestion", {})
    _check_fraction("ingestion.sample_frac", ingestion.get("sample_frac"), allow_one=True)
    _check_fraction("ingestion.test_fraction", ingestion.get("test_fraction"), allow_one=False)
    for namespace in MODEL_NAMESPACES:
        classifier = params.get(namespace, {}).get("classifier", {})
        _check_choice(f"{namespace}.classifier.type", classifier.get("type"), tuple(CLASSIFIERS))
    mapping = _check_class_scheme(params.get("class_scheme", "eurosat"))
    if "raw_tiles" in pipeline_inputs:
        _check_tiles_dir(params.get("tiles_dir"))
        _check_tile_classes(params.get("tiles_dir"), mapping)
    training_on_labels = "params:reference_rasters" in pipeline_inputs
    if training_on_labels and params.get("reference_labels"):
        _check_reference(params, mapping)
    if "params:assess" in pipeline_inputs or (training_on_labels and params.get("reference_labels")):
        _check_side_by_side(params.get("scoring", {}))
    if "params:assess" in pipeline_inputs:
        from aerial_kedro.pipelines.assess.nodes import validate_assess_params

        validate_assess_params(
            params.get("reference_labels"),
            params.get("reference_class_field"),
            params.get("min_cover"),
            params.get("assess", {}),
        )
    if "params:change" in pipeline_inputs:
        # Before scoring's check: each date is a score_source, named here as change.before/after.
        from aerial_kedro.pipelines.change.nodes import validate_change_params

        validate_change_params(params.get("change", {}))
    if "params:scoring" in pipeline_inputs:
        # The scoring settings with each source the pipeline reads through them: `score` and
        # `assess` score_source, `change` its two dates, `train` the rasters labels are drawn on.
        sources = []
        if "params:score_source" in pipeline_inputs:
            sources.append(params.get("score_source"))
        if "params:change" in pipeline_inputs:
            change = params.get("change", {})
            sources += [change.get("before"), change.get("after")]
        if training_on_labels and params.get("reference_labels"):
            sources.append(params.get("reference_rasters"))
        for source in sources:
            ScoringSettings.from_params(source, params.get("scoring", {}))


def _check_class_scheme(scheme: Any) -> dict[str, str]:
    from aerial_kedro.class_schemes import ClassSchemeError, resolve_scheme

    try:
        return resolve_scheme(scheme)
    except ClassSchemeError as error:
        raise ParameterError(str(error)) from None


def _check_tile_classes(tiles_dir: Any, mapping: dict[str, str]) -> None:
    """Every class folder must be in the class scheme (local folders; remote ones at run time)."""
    from aerial_kedro.class_schemes import ClassSchemeError, check_labels

    if "://" in str(tiles_dir):
        return
    folders = [child.name for child in Path(str(tiles_dir)).iterdir() if child.is_dir()]
    try:
        check_labels(folders, mapping, what=f"tiles_dir class folder (in '{tiles_dir}')")
    except ClassSchemeError as error:
        raise ParameterError(f"class_scheme: {error}") from None


def _check_side_by_side(scoring: dict[str, Any]) -> None:
    """Reference chips and the accuracy assessment need chips that partition the ground."""
    stride = scoring.get("chip_stride_px")
    if stride not in (None, scoring.get("chip_px")):
        raise ParameterError(
            f"scoring.chip_stride_px: {stride} makes chips overlap; reference labels and assess "
            "need chips side by side (null)"
        )


def _check_reference(params: dict[str, Any], mapping: dict[str, str]) -> None:
    """Labels readable, class field present, every class in the scheme, rasters given."""
    from aerial_kedro.class_schemes import ClassSchemeError, check_labels
    from aerial_kedro.geo.reference_labels import read_reference_labels

    if not params.get("reference_rasters"):
        raise ParameterError(
            "reference_rasters: not set; reference_labels need the rasters they were drawn over"
        )
    _check_fraction("min_cover", params.get("min_cover"), allow_one=True)
    field = params.get("reference_class_field") or "class"
    try:
        labels = read_reference_labels(params["reference_labels"], field)
        check_labels(labels["label"], mapping, what=f"reference_labels class ({field})")
    except ClassSchemeError as error:
        raise ParameterError(f"class_scheme: {error}") from None
    except ValueError as error:
        raise ParameterError(f"reference_labels: {error}") from None


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
