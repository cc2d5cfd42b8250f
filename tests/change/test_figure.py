"""Imagery previews for the change PNG, read from the real sources, and the figure itself."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from conftest import RASTERS, SHARED_DATA

from aerial_kedro.change.figure import Imagery, change_figure
from aerial_kedro.change.raster import change_codes, change_raster, class_grid, group_colors
from aerial_kedro.geo.preview import preview_grid, read_preview

PISA_AFTER = SHARED_DATA / "oscd" / "pisa" / "imgs_2"
GROUPS = ("forest", "cropland", "grassland", "built", "water")


def pisa_bands() -> dict[str, str]:
    files = {p.stem[-3:]: str(p) for p in PISA_AFTER.glob("*.tif")}
    return {"red": files["B04"], "green": files["B03"], "blue": files["B02"]}


def test_figure_has_six_panels():
    table = pd.DataFrame(
        [{"chip_id": f"c{c}", "crs": "EPSG:32633", "row": -8717, "col": c,
          "status": "both_scored", "coarse_before": "cropland",
          "coarse_after": "built" if c == 850 else "cropland", "changed": c == 850}
         for c in range(849, 853)]
    )  # fmt: skip
    codes = change_codes(GROUPS)
    raster = change_raster(table, "EPSG:32633", 640.0, codes)
    transform, shape = preview_grid(raster, max_pixels=64)
    assert shape == (16, 64) and transform.a == 40.0
    rgb = read_preview([str(RASTERS / "czech_s2_tci_20220319.tif")], raster.crs, transform, shape)
    figure = change_figure(
        raster,
        class_grid(table, raster.crs, "coarse_before", GROUPS, raster),
        class_grid(table, raster.crs, "coarse_after", GROUPS, raster),
        GROUPS,
        list(codes.colors[:5]),
        [Imagery(rgb, "before"), None],
        "test",
        ["a line"],
        {codes.transition(1, 3): 1, codes.stable(1): 3},
    )
    assert len(figure.axes) == 6
    assert figure.axes[1].texts[0].get_text() == "imagery not readable"


# --------------------------------------------------------------------------- legend, cloudy, dates


def _lab(color) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB colour: distances in it are what people see (CIE76 delta E)."""
    from aerial_kedro.geo.palette import to_float_rgb

    rgb = np.asarray(to_float_rgb(color))
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ lin / np.array([0.95047, 1.0, 1.08883])  # fmt: skip
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(a, b) -> float:
    return float(np.linalg.norm(_lab(a) - _lab(b)))


def transitions_figure(date_labels=(None, None)):
    """A row of chips: stable cropland, cropland -> built, water -> built, cloudy, stable water."""
    rows = [("cropland", "cropland", False, "both_scored"), ("cropland", "built", True, "both_scored"),
            ("water", "built", True, "both_scored"), (None, None, False, "cloudy"),
            ("water", "water", False, "both_scored")]  # fmt: skip
    table = pd.DataFrame(
        [{"chip_id": f"c{c}", "crs": "EPSG:32633", "row": -8717, "col": 849 + c, "status": status,
          "coarse_before": before, "coarse_after": after, "changed": changed}
         for c, (before, after, changed, status) in enumerate(rows)]
    )  # fmt: skip
    codes = change_codes(GROUPS)
    raster = change_raster(table, "EPSG:32633", 640.0, codes)
    counts = {codes.stable(1): 1, codes.transition(1, 3): 1, codes.transition(4, 3): 1,
              codes.special("cloudy"): 1, codes.stable(4): 1}  # fmt: skip
    figure = change_figure(
        raster,
        class_grid(table, raster.crs, "coarse_before", GROUPS, raster),
        class_grid(table, raster.crs, "coarse_after", GROUPS, raster),
        GROUPS, group_colors(GROUPS), [Imagery(np.full((4, 20, 3), 0.5), "before: pisa/imgs_1"), None],
        "Land-use change pisa/imgs_1 -> pisa/imgs_2", [], counts, date_labels=date_labels,
    )  # fmt: skip
    return figure, codes


def test_two_transitions_into_one_class_look_different_on_the_map_and_in_the_legend():
    from aerial_kedro.change.figure import TransitionKey, _change_legend
    from aerial_kedro.change.raster import COARSE_COLORS

    figure, codes = transitions_figure()
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    ax = figure.axes[2]  # the change panel: 5 chips of 0.64 km in a row

    def colour_at(x_km: float) -> tuple[int, ...]:
        x, y = ax.transData.transform((x_km, 0.32))
        return tuple(int(v) for v in pixels[pixels.shape[0] - round(y), round(x)])

    def close(rgb, hex_color) -> bool:
        from aerial_kedro.geo.palette import to_rgb

        return max(abs(a - b) for a, b in zip(rgb, to_rgb(hex_color), strict=True)) <= 12

    built, cropland, water = (
        COARSE_COLORS["built"],
        COARSE_COLORS["cropland"],
        COARSE_COLORS["water"],
    )
    # Both changed chips are filled with "built"; their frames are the class they came from.
    assert close(colour_at(1.5 * 0.64), built) and close(colour_at(2.5 * 0.64), built)
    assert close(colour_at(1.06 * 0.64), cropland), colour_at(1.06 * 0.64)
    assert close(colour_at(2.06 * 0.64), water), colour_at(2.06 * 0.64)

    legend = figure.axes[5].get_legend()
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == [
        "cropland, unchanged  (1 chips)",
        "water, unchanged  (1 chips)",
        "cropland -> built  (1 chips)",
        "water -> built  (1 chips)",
        "cloudy  (1 chips)",
    ]  # fmt: skip  (only the codes present)
    raster_like = change_raster(
        pd.DataFrame([{"chip_id": "c", "crs": "EPSG:32633", "row": 0, "col": 0, "status": "cloudy",
                       "coarse_before": None, "coarse_after": None, "changed": False}]),
        "EPSG:32633", 640.0, codes)  # fmt: skip
    legend_handles, legend_labels = _change_legend(
        raster_like, GROUPS, group_colors(GROUPS),
        {codes.transition(1, 3): 2, codes.transition(4, 3): 1},
    )  # fmt: skip
    assert legend_labels == ["cropland -> built  (2 chips)", "water -> built  (1 chips)"]
    assert legend_handles == [TransitionKey(fill=built, frame=cropland),
                              TransitionKey(fill=built, frame=water)]  # fmt: skip
    assert legend_handles[0] != legend_handles[1]


def test_cloudy_is_far_from_every_class_colour_and_hatched():
    from aerial_kedro.change.figure import CLOUDY_HATCH, _change_legend
    from aerial_kedro.change.raster import pale

    codes = change_codes(GROUPS)
    cloudy = codes.colors[codes.special("cloudy")]
    for color in codes.colors[:5]:  # unchanged chips: the pale class colours
        assert delta_e(cloudy, color) > 25, (color, delta_e(cloudy, color))
    for color in {codes.colors[codes.transition(0, t)] for t in range(5)}:  # full class colours
        assert delta_e(cloudy, color) > 25, color
        assert delta_e(cloudy, pale(color)) > 25, color
    handles, labels = _change_legend(
        change_raster(pd.DataFrame([{"chip_id": "c", "crs": "EPSG:32633", "row": 0, "col": 0,
                                     "status": "cloudy", "coarse_before": None,
                                     "coarse_after": None, "changed": False}]),
                      "EPSG:32633", 640.0, codes),
        GROUPS, group_colors(GROUPS), {codes.special("cloudy"): 3},
    )  # fmt: skip
    assert labels == ["cloudy  (3 chips)"] and handles[0].get_hatch() == CLOUDY_HATCH
    figure, _ = transitions_figure()  # and cloudy chips are hatched on the map
    assert any(c.get_hatch() == CLOUDY_HATCH for c in figure.axes[2].collections)


def test_titles_carry_the_dates():
    figure, _ = transitions_figure(("2015-07-04", "2018-02-11"))
    titles = [ax.get_title() for ax in figure.axes[:5]]
    assert titles == [
        "before 2015-07-04: pisa/imgs_1",
        "after 2018-02-11",  # no imagery: the panel says so, the title still dates it
        "change 2015-07-04 -> 2018-02-11",
        "land use 2015-07-04 (before, coarse classes)",
        "land use 2018-02-11 (after, coarse classes)",
    ]
    assert figure._suptitle.get_text().endswith("(2015-07-04 -> 2018-02-11)")
    undated, _ = transitions_figure()
    assert undated.axes[0].get_title() == "before: pisa/imgs_1"
    assert undated.axes[3].get_title() == "land use before (coarse classes)"


def test_date_label_reads_names_and_oscd_dates(tmp_path):
    from aerial_kedro.change.figure import date_label

    pisa = SHARED_DATA / "oscd" / "pisa"
    assert (pisa / "dates.txt").read_text().split() == [
        "date_1:",
        "20150704",
        "date_2:",
        "20180211",
    ]
    assert date_label(str(pisa / "imgs_1")) == "2015-07-04"
    assert date_label(str(pisa / "imgs_2") + "/") == "2018-02-11"
    oper = "S2A_OPER_MSI_L1C_TL_EPA__20160809T015434_A000162_T32TPP_B02.tif"
    assert date_label(str(pisa / "imgs_1" / oper)) == "2015-07-04"  # dates.txt beside the folder
    # Alone, an old OPER tile name states when the product was made (2016), not imaged (2015).
    assert date_label(oper) is None
    assert date_label("S2A_OPER_PRD_MSIL1C_PDMC_20160809T015434_R065_V20150704T101006_"
                      "20150704T101006.SAFE") == "2015-07-04"  # fmt: skip
    assert date_label("T32TPP_20180211T102141_B02.tif") == "2018-02-11"
    assert (
        date_label("S2A_MSIL1C_20180211T102141_N0206_R065_T32TPP_20180211T122119.SAFE")
        == "2018-02-11"
    )
    assert date_label(str(RASTERS / "czech_s2_tci_20220316_cloudy.tif")) == "2022-03-16"
    assert date_label(str(RASTERS / "czech-2x2")) == "2022-03-19"  # its files' one date
    assert date_label("az://imagery/2021-05-03/scene.tif") == "2021-05-03"
    stack = "stack:" + json.dumps(list(pisa_bands().values()))
    assert date_label(stack) == "2018-02-11"
    for undated in ("scene.tif", "tile_99999999.tif", "A000162", str(tmp_path)):
        assert date_label(undated) is None, undated
    city = tmp_path / "city"
    (city / "imgs_2").mkdir(parents=True)
    (city / "dates.txt").write_text("date_1: 20200101\ndate_2: 20210615\n")
    assert date_label(str(city / "imgs_2")) == "2021-06-15"
