"""Issue 20: map products kept per scored source, models kept per `train` run.

Real Spark, real rasters: the Czech scene and an OSCD city (Pisa, uint16 band files) scored one
after the other keep both maps; a second training keeps the first models, and
`scoring.model_version` scores with the earlier one (and the featurizer saved with it); a plain
JPEG says, before scoring, that it makes no map.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import rasterio
from conftest import CZECH_SCENE, PASSENGER_MODELS, PISA_BEFORE, run_kedro

pytestmark = pytest.mark.slow

MAPS = "data/08_reporting/maps"
MODELS = "data/06_models/efficientnet_lite0"
FEATURIZERS = "data/06_models/featurizers"


@pytest.fixture(scope="module")
def project(trained_project, tmp_path_factory) -> Path:
    """A copy of the trained project (models, features, tracking): retraining it here leaves the
    session's project as the other tests expect it."""
    copy = tmp_path_factory.mktemp("kept") / "project"
    shutil.copytree(trained_project, copy, ignore=shutil.ignore_patterns("*.log"))
    return copy


def versions(folder: Path) -> list[str]:
    return sorted(child.name for child in folder.iterdir() if not child.name.startswith("."))


def test_scoring_a_second_source_keeps_the_first_map(project, caplog):
    caplog.set_level(logging.INFO)
    index_file = project / MAPS / "index.json"
    earlier = set(json.loads(index_file.read_text())["maps"]) if index_file.exists() else set()
    run_kedro(project, "score", score_source=str(CZECH_SCENE))
    czech = project / MAPS / "czech_s2_tci_20220319"
    cog = (czech / "land_use_classes.tif").read_bytes()
    run_kedro(project, "score", score_source=str(PISA_BEFORE))
    pisa = project / MAPS / "pisa_imgs_1"

    # The first source's products are all still there, untouched, beside the second's.
    assert (czech / "land_use_classes.tif").read_bytes() == cog
    for folder, crs in ((czech, "EPSG:32633"), (pisa, "EPSG:32632")):
        for name in ("land_use_classes.tif", "land_use_chips.geojson", "land_use_map.png",
                     "class_shares.json", "land_use_map.stac.json", "rejected_rasters.json"):
            assert (folder / name).stat().st_size > 0, (folder, name)
        assert list((folder / "land_use_chips.geoparquet").glob("EPSG_*/*.parquet"))
        with rasterio.open(folder / "land_use_classes.tif") as classes:
            assert classes.crs.to_string() == crs
        item = json.loads((folder / "land_use_map.stac.json").read_text())
        assert item["type"] == "Feature" and item["properties"]["aerial:model_version"]
    shares = json.loads((czech / "class_shares.json").read_text())
    assert shares["kind"] == "rasters" and shares["chips"]["scored"] > 400
    assert shares["source"] == str(CZECH_SCENE)
    assert json.loads((pisa / "class_shares.json").read_text())["source"] == str(PISA_BEFORE)

    # Both are listed: the index, and the log at the end of the second run.
    index = json.loads(index_file.read_text())["maps"]
    assert set(index) - earlier == {"czech_s2_tci_20220319", "pisa_imgs_1"} - earlier
    assert {"czech_s2_tci_20220319", "pisa_imgs_1"} <= set(index)
    assert index["pisa_imgs_1"]["source"] == str(PISA_BEFORE)
    assert {"land_use_classes.tif", "land_use_map.png", "class_shares.json"} <= set(
        index["czech_s2_tci_20220319"]["files"]
    )
    assert index["czech_s2_tci_20220319"]["georeferenced"] is True
    messages = [record.getMessage() for record in caplog.records]
    # The copied project may hold maps other tests scored before this one: the log lists them all.
    assert any(f"{len(index)} source(s) mapped" in m and ", ".join(sorted(index)) in m
               for m in messages)
    assert any(m.startswith("Map products of") and str(pisa) in m for m in messages)


def test_training_twice_keeps_both_models_and_scores_the_earlier(project, sample_tiles, caplog):
    lr = project / MODELS / "logistic_regression"
    first = versions(lr)
    assert len(first) == 1 and len(versions(project / FEATURIZERS / "efficientnet_lite0.onnx")) == 1
    run_kedro(project, "modeling", **PASSENGER_MODELS)  # retrain on the same features: a second version of each model
    both = versions(lr)
    assert len(both) == 2 and both[0] == first[0]
    assert len(versions(project / MODELS / "random_forest")) == 2
    assert (lr / first[0] / "logistic_regression" / "metadata").is_dir()  # the first is untouched

    tile = sample_tiles / "Forest" / "Forest_1.jpg"
    run_kedro(project, "score", score_source=str(tile))
    latest = json.loads((project / MAPS / "Forest_1.jpg" / "class_shares.json").read_text())
    assert latest["model_version"] == both[1]

    caplog.set_level(logging.INFO)
    run_kedro(project, "score", score_source=str(tile), scoring={"model_version": first[0]})
    earlier = json.loads((project / MAPS / "Forest_1.jpg" / "class_shares.json").read_text())
    assert earlier["model_version"] == first[0] and earlier["run_id"] != latest["run_id"]
    assert earlier["chips"]["scored"] == 1
    assert any(f"version {first[0]}" in r.getMessage() for r in caplog.records)

    # A version that was never saved fails with one line naming it and the versions there are.
    with pytest.raises(Exception, match="2001-01-01T00.00.00.000Z.*versions: "):
        run_kedro(project, "score", score_source=str(tile),
                  scoring={"model_version": "2001-01-01T00.00.00.000Z"})


def test_a_plain_jpeg_says_before_scoring_that_it_makes_no_map(project, sample_tiles, caplog):
    caplog.set_level(logging.INFO)
    tile = sample_tiles / "River" / "River_1.jpg"
    run_kedro(project, "score", score_source=str(tile))
    messages = [record.getMessage() for record in caplog.records]
    note = [i for i, m in enumerate(messages) if "has no georeference" in m]
    assert len(note) == 1
    assert "1 plain image" in messages[note[0]] and "class shares and predictions, no map" in (
        messages[note[0]]
    )
    scored = next(i for i, m in enumerate(messages) if m.startswith("Scored "))
    assert note[0] < scored  # said before any scoring
    folder = project / MAPS / "River_1.jpg"
    assert (folder / "class_shares.json").exists() and not (folder / "land_use_classes.tif").exists()
    # The maps of the sources scored before are still listed and in place.
    index = json.loads((project / MAPS / "index.json").read_text())["maps"]
    assert index["River_1.jpg"]["georeferenced"] is False
    if "czech_s2_tci_20220319" in index:
        assert (project / MAPS / "czech_s2_tci_20220319" / "land_use_classes.tif").exists()
