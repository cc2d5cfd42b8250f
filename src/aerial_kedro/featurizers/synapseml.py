"""featurization.backend=synapseml: the featurizer's ONNX graph run by SynapseML's ONNXModel.

Decoding, resizing and normalisation are the default backend's own Python functions
(``decode_tile``, ``to_network_input``) run in a ``mapInArrow``, so both backends feed the network
the same tensors; only the runtime that executes the graph differs (onnxruntime's Java build in the
executor JVM instead of onnxruntime in the Python worker). The ONNX bytes travel inside the
ONNXModel stage (SynapseML broadcasts its payload), never as a path on the driver's disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from aerial_kedro.featurizers.preprocess import to_network_input
from aerial_kedro.featurizers.spec import FeaturizerSpec
from aerial_kedro.spark_inference import decode_batch

NETWORK_INPUT = "network_input"
FEATURES = "features"
JARS_HINT = (
    "SynapseML's JVM classes are not on Spark's classpath: run scripts/fetch_synapseml_jars.sh "
    "and put .cache/jars/synapseml/*.jar on spark.jars (conf/<env>/spark.yml)"
)


def new_synapseml_stage(factory: Callable[..., Any], what: str, **params: Any) -> Any:
    """Instantiate a SynapseML wrapper; missing jars become one line saying how to get them."""
    try:
        return factory(**params)
    except TypeError as error:
        if "JavaPackage" in str(error):  # py4j's stand-in for a class the JVM does not have
            raise RuntimeError(f"{what} needs SynapseML: {JARS_HINT}") from None
        raise


def nested_tensor_array(tensor: np.ndarray) -> pa.Array:
    """``N x C x H x W`` float32 -> Arrow ``list<list<list<float>>>``: one C x H x W array per row.

    ONNXModel wants each row's tensor as nested arrays matching the input's non-batch dims.
    Built from one flat buffer plus offsets, without Python lists.
    """
    values: pa.Array = pa.array(np.ascontiguousarray(tensor, dtype=np.float32).reshape(-1))
    for size in reversed(tensor.shape[1:]):
        count = len(values) // size
        offsets = pa.array(np.arange(count + 1, dtype=np.int32) * size)
        values = pa.ListArray.from_arrays(offsets, values)
    return values


def network_input_batch(batch: pa.RecordBatch, spec: FeaturizerSpec) -> pa.RecordBatch:
    """Replace ``content`` with the normalised network input and an ``error`` reason per row.

    A tile that cannot be decoded gets an all-zero tensor (ONNXModel needs a tensor in every row)
    and its reason; its features are dropped after inference.
    """
    pixels, positions, reasons = decode_batch(batch.column("content").to_pandas())
    if "reason" in batch.schema.names:  # rejected at listing (a symlink repeat, a dangling link)
        listed = batch.column("reason").to_pylist()
        reasons = [given or reason for given, reason in zip(listed, reasons, strict=True)]
    size = spec.input_size
    tensor = np.zeros((batch.num_rows, 3, size, size), dtype=np.float32)
    if pixels:
        tensor[positions] = to_network_input(pixels, spec)
    keys = [name for name in batch.schema.names if name != "content"]
    columns = [batch.column(name) for name in keys]
    columns += [nested_tensor_array(tensor), pa.array(reasons, type=pa.string())]
    return pa.RecordBatch.from_arrays(columns, names=[*keys, NETWORK_INPUT, "error"])


def with_network_input(tiles: DataFrame, spec: FeaturizerSpec, batch_size: int) -> DataFrame:
    """Key columns + ``network_input array<array<array<float>>>`` + ``error string``."""
    spec_dict = spec.to_dict()
    key_fields = [field for field in tiles.schema.fields if field.name != "content"]
    schema = ", ".join(f"`{field.name}` {field.dataType.simpleString()}" for field in key_fields)
    schema += f", {NETWORK_INPUT} array<array<array<float>>>, error string"

    def preprocess(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        worker_spec = FeaturizerSpec.from_dict(spec_dict)
        for batch in batches:
            for start in range(0, batch.num_rows, batch_size):
                yield network_input_batch(batch.slice(start, batch_size), worker_spec)

    return tiles.mapInArrow(preprocess, schema)


def onnx_model(onnx_bytes: bytes, spec: FeaturizerSpec, batch_size: int) -> Any:
    """SynapseML ONNXModel: ``network_input`` -> ``features`` (the featurizer's feature output)."""
    from synapse.ml.onnx import ONNXModel

    model = new_synapseml_stage(ONNXModel, "featurization.backend=synapseml")
    return (
        model.setModelPayload(onnx_bytes)
        .setDeviceType("CPU")
        .setFeedDict({spec.input_name: NETWORK_INPUT})
        .setFetchDict({FEATURES: spec.feature_output})
        .setMiniBatchSize(batch_size)
    )


def featurize_tiles_synapseml(
    tiles: DataFrame, onnx_bytes: bytes, spec: FeaturizerSpec, batch_size: int
) -> DataFrame:
    """Same contract as ``spark_inference.featurize_tiles_spark``: the key columns of ``tiles``
    (all but ``content``) plus ``features array<float>`` (null when rejected) and ``error string``.
    """
    keys = [field.name for field in tiles.schema.fields if field.name != "content"]
    prepared = with_network_input(tiles, spec, batch_size)
    scored = onnx_model(onnx_bytes, spec, batch_size).transform(prepared)
    features = F.when(F.col("error").isNull(), F.col(FEATURES).cast("array<float>"))
    return scored.select(*keys, features.alias(FEATURES), "error")
