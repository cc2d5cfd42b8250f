import pytest

from aerial_kedro.class_schemes import (
    COARSE,
    ClassSchemeError,
    check_labels,
    describe_scheme,
    map_label,
    resolve_scheme,
    target_classes,
)
from aerial_kedro.geo.palette import EUROSAT_CLASSES, class_colors


def test_coarse_maps_every_eurosat_class_to_five_classes():
    mapping = resolve_scheme("coarse")
    assert {mapping[name] for name in EUROSAT_CLASSES} == {
        "forest", "cropland", "grassland", "built", "water"
    }  # fmt: skip
    assert target_classes(mapping) == ["built", "cropland", "forest", "grassland", "water"]
    assert map_label("SeaLake", mapping) == "water"
    assert map_label("Highway", mapping) == "built"


def test_target_names_pass_through_so_reference_labels_may_use_either_vocabulary():
    mapping = resolve_scheme("coarse")
    assert map_label("forest", mapping) == "forest"
    check_labels(["cropland", "Forest", "built"], mapping, what="label")


def test_eurosat_scheme_is_the_identity():
    mapping = resolve_scheme("eurosat")
    assert all(map_label(name, mapping) == name for name in EUROSAT_CLASSES)


def test_unknown_label_is_one_line_naming_it():
    with pytest.raises(ClassSchemeError, match="reference class 'wetland' is not in the class scheme"):
        map_label("wetland", resolve_scheme("coarse"), what="reference class")


def test_inline_mapping_and_bad_schemes():
    mapping = resolve_scheme({"AnnualCrop": "crop", "Forest": "tree"})
    assert target_classes(mapping) == ["crop", "tree"]
    with pytest.raises(ClassSchemeError, match="class_scheme: 'fine' is not allowed"):
        resolve_scheme("fine")
    with pytest.raises(ClassSchemeError, match="maps to no class name"):
        resolve_scheme({"AnnualCrop": ""})


def test_description_stored_with_the_model():
    description = describe_scheme("coarse", resolve_scheme("coarse"))
    assert description["name"] == "coarse"
    assert description["classes"] == target_classes(resolve_scheme("coarse"))
    assert description["mapping"]["Pasture"] == "grassland" == COARSE["Pasture"]


def test_coarse_classes_have_their_own_distinct_colours():
    colours = class_colors(["built", "cropland", "forest", "grassland", "water"])
    assert len(set(colours)) == 5
    assert colours[2] == class_colors(["Forest"])[0]


def test_the_folders_scheme_is_the_identity_over_the_folders_found():
    from aerial_kedro.class_schemes import FOLDERS, resolve_training_scheme

    mapping = resolve_training_scheme(FOLDERS, ["harbor", "airplane", "harbor", "golfcourse"])
    assert mapping == {"airplane": "airplane", "golfcourse": "golfcourse", "harbor": "harbor"}
    assert describe_scheme(FOLDERS, mapping) == {
        "name": "folders", "classes": ["airplane", "golfcourse", "harbor"], "mapping": mapping
    }  # fmt: skip
    # The named schemes stay choosable, and the message names `folders` beside them.
    assert resolve_training_scheme("coarse", ["harbor"]) == resolve_scheme("coarse")
    with pytest.raises(ClassSchemeError, match="^class_scheme: 'fine' is not allowed; allowed values: folders, eurosat, coarse or a mapping"):
        resolve_training_scheme("fine", ["harbor"])


def test_a_label_outside_an_identity_scheme_names_its_classes():
    from aerial_kedro.class_schemes import resolve_training_scheme

    mapping = resolve_training_scheme("folders", ["airplane", "harbor"])
    with pytest.raises(ClassSchemeError) as error:
        map_label("built", mapping, what="reference class")
    assert str(error.value) == "reference class 'built' is not in the class scheme; its classes are airplane, harbor"
