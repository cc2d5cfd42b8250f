"""Checks a user can trip (bad parameter, missing folder), run before Spark starts.

Each pipeline's parameters are a typed settings model beside the pipeline
(``pipelines/<name>/settings.py``); :func:`validate_run` builds those the run's pipelines read,
so the first bad key fails the run in one line before a Spark session exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aerial_kedro.chips.settings import ScoringSettings, require_side_by_side
from aerial_kedro.class_schemes import FOLDERS
from aerial_kedro.errors import ParameterError
from aerial_kedro.models.namespaces import MODEL_NAMESPACES
from aerial_kedro.pipelines.featurization.settings import FeaturizationSettings
from aerial_kedro.pipelines.ingestion.settings import (
    IngestionSettings,
    check_folders_in_scheme,
    check_trainable,
    class_folder_counts,
)
from aerial_kedro.pipelines.modeling.settings import ClassifierSettings
from aerial_kedro.pipelines.reference.settings import ReferenceSettings, check_reference_labels

__all__ = ["ParameterError", "validate_run"]  # ParameterError lives in aerial_kedro.errors


def validate_run(params: dict[str, Any], pipeline_inputs: set[str]) -> None:
    """Validate the parameters a pipeline will use; raise ``ParameterError`` on the first problem."""
    FeaturizationSettings.from_params(params.get("featurizer"), params.get("featurization"))
    ingestion = IngestionSettings.from_params(params.get("ingestion"))
    for namespace in MODEL_NAMESPACES:
        ClassifierSettings.from_params(namespace, params.get(namespace, {}).get("classifier"))
    scheme = params.get("class_scheme", FOLDERS)
    _class_scheme(scheme, [])  # an unknown scheme name fails before the folders are read
    tiles_dir = params.get("tiles_dir")
    counts = class_folder_counts(tiles_dir) if "raw_tiles" in pipeline_inputs else None
    # The `folders` scheme's classes are the local class folders; unknown until Spark lists a
    # remote store, or when the run reads no tiles (reference labels are checked by the node).
    mapping = None if scheme == FOLDERS and counts is None else _class_scheme(scheme, counts or {})
    if counts is not None and mapping is not None:
        check_folders_in_scheme(tiles_dir, counts, mapping)
    reference_classes: set[str] = set()
    training_on_labels = "params:reference_rasters" in pipeline_inputs and bool(
        params.get("reference_labels")
    )
    if training_on_labels:
        reference = ReferenceSettings.from_params(
            params.get("reference_labels"),
            params.get("reference_rasters"),
            params.get("reference_class_field"),
            params.get("min_cover"),
            params.get("reference"),
        )
        if mapping is not None:
            reference_classes = check_reference_labels(reference, mapping)
    if counts is not None and mapping is not None:
        check_trainable(tiles_dir, counts, mapping, ingestion, reference_classes)
    if "params:assess" in pipeline_inputs or training_on_labels:
        require_side_by_side(params.get("scoring", {}))
    if "params:assess" in pipeline_inputs:
        from aerial_kedro.pipelines.assess.settings import AssessSettings

        AssessSettings.from_params(
            params.get("reference_labels"),
            params.get("reference_class_field"),
            params.get("min_cover"),
            params.get("assess", {}),
        )
    if "params:change" in pipeline_inputs:
        # Before scoring's check: each date is a score_source, named here as change.before/after.
        from aerial_kedro.pipelines.change.settings import (
            ChangeSettings,
            require_chips_for_appearance,
        )

        change = ChangeSettings.from_params(params.get("change", {}))
        require_chips_for_appearance(change, params.get("scoring", {}))
    if "params:scoring" in pipeline_inputs:
        _check_scoring(params, pipeline_inputs, training_on_labels)


def _check_scoring(
    params: dict[str, Any], pipeline_inputs: set[str], training_on_labels: bool
) -> None:
    """The scoring settings with each source the pipeline reads through them: `score` and
    `assess` score_source, `change` its two dates, `train` the rasters labels are drawn on."""
    sources = []
    if "params:score_source" in pipeline_inputs:
        sources.append(params.get("score_source"))
    if "params:change" in pipeline_inputs:
        change = params.get("change", {})
        sources += [change.get("before"), change.get("after")]
    if training_on_labels:
        sources.append(params.get("reference_rasters"))
    for source in sources:
        ScoringSettings.from_params(source, params.get("scoring", {}))


def _class_scheme(scheme: Any, folder_classes: Iterable[str]) -> dict[str, str]:
    from aerial_kedro.class_schemes import ClassSchemeError, resolve_training_scheme

    try:
        return resolve_training_scheme(scheme, folder_classes)
    except ClassSchemeError as error:
        raise ParameterError(str(error)) from None
