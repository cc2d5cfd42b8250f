"""The map legend names what one grid cell is: a chip, or a cell of averaged overlapping chips."""

import matplotlib.pyplot as plt
import numpy as np

from aerial_kedro.geo.map_png import map_figure

CLASSES = ["Forest", "Water"]


def _legend_and_panel_titles(**kwargs) -> tuple[str, list[str]]:
    grid = np.array([[0, 1], [1, 0]], dtype=np.int16)
    figure = map_figure(grid, CLASSES, chip_size_m=160.0, smoothed=grid, **kwargs)
    try:
        legend = figure.legends[0].get_title().get_text()
        return legend, [ax.get_title() for ax in figure.axes]
    finally:
        plt.close(figure)


def test_map_of_chips_says_chip_and_its_size() -> None:
    legend, panels = _legend_and_panel_titles()
    assert "chip = 160 m" in legend and "share of chips" in legend
    assert panels[0] == "per chip"


def test_map_of_cells_says_cell_not_chip() -> None:
    legend, panels = _legend_and_panel_titles(unit="cell")
    assert "cell = 160 m" in legend and "share of cells" in legend
    assert "chip" not in legend
    assert panels[0] == "per cell"
