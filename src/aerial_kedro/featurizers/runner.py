"""An onnxruntime session for a featurizer: plain numpy in, feature vectors out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from aerial_kedro.featurizers.preprocess import to_network_input
from aerial_kedro.featurizers.spec import FeaturizerSpec


class OnnxFeaturizer:
    """Runs a featurizer ONNX model on batches of RGB tiles."""

    def __init__(self, onnx_bytes: bytes, spec: FeaturizerSpec, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.spec = spec
        self.session = ort.InferenceSession(
            onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )

    def run(self, tensor: np.ndarray, output: str | None = None) -> np.ndarray:
        """Run on an already-normalised ``N x 3 x S x S`` tensor; return one output."""
        name = output or self.spec.feature_output
        (result,) = self.session.run([name], {self.spec.input_name: tensor})
        return result.reshape(result.shape[0], -1)

    def features(self, tiles: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Feature vectors (``N x feature_dim`` float32) for RGB uint8 tiles of any size."""
        if len(tiles) == 0:
            return np.zeros((0, self.spec.feature_dim), dtype=np.float32)
        chunks = [
            self.run(to_network_input(tiles[start : start + batch_size], self.spec))
            for start in range(0, len(tiles), batch_size)
        ]
        return np.concatenate(chunks).astype(np.float32, copy=False)
