"""Issue 24 items 1 and 7: reference label files are untrusted content.

* A 200-byte GeoJSON can hold one polygon over half of Europe. Labels are clipped to the chips
  the rasters have (the scoring plan) before any chip is enumerated, and the candidate chips of
  one label file are capped by ``scoring.max_chips``, refused in one line before any work.
* NaN coordinates are a rejected label with that reason; class text with control or bidi
  characters is escaped, so it cannot forge or reorder a log line or a report cell.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import CZECH_SCENE_BOUNDS, SHARED_DATA

from aerial_kedro.geo.grid import ChipGrid, chip_id, chips_inside
from aerial_kedro.geo.label_chips import PlanTooLargeError, label_planned_chips
from aerial_kedro.geo.label_files import read_reference_labels

UTM = "EPSG:32633"
GRID = ChipGrid(64, 10.0)
PROJECT = Path(__file__).resolve().parents[2]


def czech_plan() -> pd.DataFrame:
    """The chips fully inside the Czech scene, as scoring plans them."""
    rows, cols = chips_inside(CZECH_SCENE_BOUNDS, GRID.size)
    cells = [(r, c) for r in rows for c in cols]
    return pd.DataFrame(
        {
            "chip_id": [chip_id(UTM, r, c) for r, c in cells],
            "crs": UTM,
            "row": [r for r, _ in cells],
            "col": [c for _, c in cells],
        }
    )


def box_labels(path: Path, degrees: float, cls: str = "forest") -> Path:
    """One ``degrees`` x ``degrees`` lon/lat box over the Czech scene (a ~200-byte GeoJSON)."""
    x0, y0 = 12.0, 48.0
    ring = [
        [x0, y0],
        [x0 + degrees, y0],
        [x0 + degrees, y0 + degrees],
        [x0, y0 + degrees],
        [x0, y0],
    ]
    feature = {"type": "Feature", "properties": {"class": cls},
               "geometry": {"type": "Polygon", "coordinates": [ring]}}  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path


def test_a_five_degree_box_labels_only_the_scene_quickly_and_in_little_memory(tmp_path):
    """Before: 480,321 chips enumerated and rejected one by one as outside (110 s, 1.04 GB RSS
    in this very call); after: the 459 chips of the scene, 0.1 s, ~190 MB."""
    labels = box_labels(tmp_path / "box.geojson", 5.0)
    script = textwrap.dedent(f"""
        # Peak RSS of this process image (VmHWM): ru_maxrss would carry over the pytest
        # parent's peak through fork + exec, which grows with the tests run before.
        import json, resource, sys, time
        sys.path.insert(0, {str(PROJECT / "tests" / "security")!r})
        sys.path.insert(0, {str(PROJECT / "tests")!r})
        from test_labels_untrusted import GRID, czech_plan
        from aerial_kedro.geo.label_chips import label_planned_chips
        from aerial_kedro.geo.label_files import read_reference_labels
        started = time.perf_counter()
        plan = czech_plan()
        inside, outside, rejected = label_planned_chips(
            read_reference_labels({str(labels)!r}), plan, GRID, 0.5, max_chips=2_000_000
        )
        print(json.dumps({{"plan": len(plan), "inside": len(inside), "outside": len(outside),
                          "rejected": len(rejected), "seconds": time.perf_counter() - started,
                          "rss_mb": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024}}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(result)
    assert result["inside"] == result["plan"] == 459
    assert result["outside"] == result["rejected"] == 0
    assert result["seconds"] < 20 and result["rss_mb"] < 1024


def test_labels_over_the_chip_cap_are_refused_in_one_line_before_work(tmp_path):
    path = box_labels(tmp_path / "box.geojson", 5.0)
    with pytest.raises(PlanTooLargeError) as error:
        label_planned_chips(
            read_reference_labels(str(path)), czech_plan(), GRID, 0.5, max_chips=100,
            source=f"reference labels '{path}'",
        )  # fmt: skip
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "max_chips (100)" in message
    assert "label 0 alone 459)" in message  # clipped to the scene, not its 480,000-chip box


def test_labels_beside_the_scene_are_outside_on_one_chip_each(tmp_path):
    """A box wholly outside the rasters is one 'outside every raster' row, not one per chip."""
    path = tmp_path / "far.geojson"
    ring = [[20, 40], [25, 40], [25, 45], [20, 45], [20, 40]]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"class": "forest"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))  # fmt: skip
    inside, outside, rejected = label_planned_chips(
        read_reference_labels(str(path)), czech_plan(), GRID, 0.5, max_chips=2_000_000
    )
    assert inside.empty and len(outside) == 1 and len(rejected) == 1
    assert rejected["reason"].iloc[0].startswith("outside every raster (chip 32633_")


def test_nan_coordinates_are_rejected_labels_and_class_text_is_escaped(tmp_path):
    """Before: a NaN point ended in GEOSException naming nothing; a NaN in a polygon landed on
    chip 32633_-9223372036854775808_... and was rejected as outside; U+202E reached the logs raw."""
    inside_scene = [548000.0, 5575000.0]  # in EPSG:32633, on the Czech scene
    path = tmp_path / "nan.geojson"
    x, y = inside_scene
    features = [
        {"type": "Feature", "properties": {"class": "forest"},
         "geometry": {"type": "Point", "coordinates": [float("nan"), y]}},
        {"type": "Feature", "properties": {"class": "cropland"},
         "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 900, y],
                                                           [float("nan"), y + 900], [x, y]]]}},
        {"type": "Feature", "properties": {"class": "evil\u202eliam\x1b[2J"},
         "geometry": {"type": "Point", "coordinates": [x, y]}},
    ]  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features,
                                "crs": {"type": "name", "properties": {"name": "EPSG:32633"}}}))  # fmt: skip
    labels = read_reference_labels(str(path))
    inside, outside, rejected = label_planned_chips(labels, czech_plan(), GRID, 0.5)

    reasons = dict(zip(rejected["label_id"], rejected["reason"], strict=True))
    assert reasons == {0: "has a NaN or infinite coordinate", 1: "has a NaN or infinite coordinate"}
    assert inside["label"].tolist() == ["evil\\u202eliam\\u001b[2J"]
    assert all(ch.isprintable() for ch in inside["label"].iloc[0])


@pytest.mark.skipif(not (SHARED_DATA / "labels").is_dir(), reason="shared labels missing")
def test_the_real_labels_label_the_same_chips_as_before():
    """Clipping changes nothing for labels drawn on the scene: 207 in the plan, 11 outside."""
    labels = read_reference_labels(str(SHARED_DATA / "labels" / "czech_west_labels.geojson"))
    inside, outside, rejected = label_planned_chips(labels, czech_plan(), GRID, 0.5)
    assert (len(inside), len(outside), len(rejected)) == (207, 11, 11)
