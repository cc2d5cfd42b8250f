"""Class schemes: which classes a model learns, as a mapping from the labels of its sources.

Sources label land differently: EuroSAT folders say ``AnnualCrop`` or ``SeaLake``, reference
polygons drawn on a scene say ``cropland`` or ``water``. A scheme maps every source label to a
target class; the model learns, evaluates, scores and draws its legend in the target classes,
and the mapping is stored beside the model so a map says what its classes were made of.

``folders`` (the default) keeps the class folders as they are: the identity over whatever classes
a tiles folder holds, so any folder of class sub-folders trains as it is (reference labels then
use those class names). ``eurosat`` keeps EuroSAT's ten classes (the identity); ``coarse`` groups
them into five classes that survive seasons and sensors better (the seed scenario grouped its
land-use classes the same way). A scheme can also be given inline as a ``{source label: target
class}`` mapping. Target class names map to themselves, so reference labels can be written in
either vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aerial_kedro.geo.palette import EUROSAT_CLASSES

COARSE: dict[str, str] = {
    "AnnualCrop": "cropland",
    "PermanentCrop": "cropland",
    "Pasture": "grassland",
    "HerbaceousVegetation": "grassland",
    "Forest": "forest",
    "Residential": "built",
    "Industrial": "built",
    "Highway": "built",
    "River": "water",
    "SeaLake": "water",
}

SCHEMES: dict[str, dict[str, str]] = {
    "eurosat": {name: name for name in EUROSAT_CLASSES},
    "coarse": COARSE,
}


# The default scheme: the classes are the tile class folders found, whatever their names.
FOLDERS = "folders"


class ClassSchemeError(ValueError):
    """A label the scheme cannot map, or a scheme that is not one."""


def resolve_scheme(scheme: str | Mapping[str, Any]) -> dict[str, str]:
    """The full ``{label: target class}`` mapping of a scheme name or inline mapping.

    Every target class also maps to itself, so labels already in the target vocabulary pass.
    """
    if isinstance(scheme, str):
        if scheme not in SCHEMES:
            raise _not_allowed(scheme, SCHEMES)
        mapping = dict(SCHEMES[scheme])
    elif isinstance(scheme, Mapping) and scheme:
        bad = [key for key, value in scheme.items() if not isinstance(value, str) or not value]
        if bad:
            raise ClassSchemeError(f"class_scheme: label '{bad[0]}' maps to no class name")
        mapping = {str(key): str(value) for key, value in scheme.items()}
    else:
        raise ClassSchemeError(f"class_scheme: '{scheme}' is neither a scheme name nor a mapping")
    for target in set(mapping.values()):
        mapping.setdefault(target, target)
    return mapping


def resolve_training_scheme(
    scheme: str | Mapping[str, Any], folder_classes: Iterable[str]
) -> dict[str, str]:
    """The mapping a training run uses: ``folders`` is the identity over ``folder_classes`` (the
    tile class folders found); any other scheme is :func:`resolve_scheme`'s."""
    if scheme == FOLDERS:
        return {name: name for name in sorted(set(folder_classes))}
    if isinstance(scheme, str) and scheme not in SCHEMES:
        raise _not_allowed(scheme, (FOLDERS, *SCHEMES))
    return resolve_scheme(scheme)


def _not_allowed(scheme: str, names: Iterable[str]) -> ClassSchemeError:
    return ClassSchemeError(
        f"class_scheme: '{scheme}' is not allowed; allowed values: "
        f"{', '.join(names)} or a mapping {{source label: class}}"
    )


def target_classes(mapping: Mapping[str, str]) -> list[str]:
    """The classes a model of this scheme learns, sorted (the model's label-index order)."""
    return sorted(set(mapping.values()))


def map_label(label: str, mapping: Mapping[str, str], *, what: str = "label") -> str:
    """The target class of one source label; a label the scheme lacks is a one-line error."""
    try:
        return mapping[label]
    except KeyError:
        sources = sorted(key for key, value in mapping.items() if key != value)
        known = (
            f"it maps {', '.join(sources)} to {', '.join(target_classes(mapping))}"
            if sources
            else f"its classes are {', '.join(target_classes(mapping)) or 'none'}"
        )
        raise ClassSchemeError(f"{what} '{label}' is not in the class scheme; {known}") from None


def check_labels(labels: Iterable[str], mapping: Mapping[str, str], *, what: str) -> None:
    """Raise :class:`ClassSchemeError` naming the first label the scheme cannot map."""
    for label in sorted(set(labels)):
        map_label(label, mapping, what=what)


def describe_scheme(scheme: str | Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """What is stored beside the model: the scheme's name, its target classes and the mapping."""
    return {
        "name": scheme if isinstance(scheme, str) else "custom",
        "classes": target_classes(mapping),
        "mapping": dict(sorted(mapping.items())),
    }
