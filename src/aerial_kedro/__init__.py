"""aerial_kedro: land-use classification of aerial and satellite imagery with Kedro, Spark and ONNX."""

__version__ = "0.1.0"
