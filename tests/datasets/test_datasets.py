import pytest
from kedro.io.core import DatasetError
from pyspark.ml import Pipeline
from pyspark.ml.feature import StringIndexer

from aerial_kedro.datasets import BinaryFileDataset, SparkMLModelDataset


def test_binary_file_round_trip(tmp_path):
    dataset = BinaryFileDataset(filepath=str(tmp_path / "nested" / "model.onnx"))
    assert not dataset.exists()
    dataset.save(b"\x08\x01onnx-bytes")
    assert dataset.exists()
    assert dataset.load() == b"\x08\x01onnx-bytes"


def test_binary_file_missing_names_the_path(tmp_path):
    with pytest.raises(DatasetError, match="missing.onnx"):
        BinaryFileDataset(filepath=str(tmp_path / "missing.onnx")).load()


def test_spark_ml_model_round_trip(spark, tmp_path):
    frame = spark.createDataFrame([("a",), ("b",), ("b",)], "label string")
    model = Pipeline(stages=[StringIndexer(inputCol="label", outputCol="index")]).fit(frame)
    dataset = SparkMLModelDataset(filepath=str(tmp_path / "model"))
    assert not dataset.exists()
    dataset.save(model)
    dataset.save(model)  # overwrite works
    loaded = dataset.load()
    assert loaded.stages[0].labels == ["b", "a"]


def test_missing_model_says_to_train_first(spark, tmp_path):
    with pytest.raises(DatasetError, match="run `kedro run --pipelines=train` first"):
        SparkMLModelDataset(filepath=str(tmp_path / "nothing")).load()
