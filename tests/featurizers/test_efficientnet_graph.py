"""Pieces of the EfficientNet-Lite ONNX graph (the whole graph is tested through the builds)."""

from __future__ import annotations

from aerial_kedro.featurizers.efficientnet_graph import same_pads


def test_same_padding_is_tf_style() -> None:
    assert same_pads(224, 3, 2) == (0, 1, 112)  # extra pixel bottom/right
    assert same_pads(65, 5, 2) == (2, 2, 33)
    assert same_pads(56, 5, 1) == (2, 2, 56)
