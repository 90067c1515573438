"""Turn face crops into 512-d FaceNet embeddings (unit length; compare by L2 distance)."""
from __future__ import annotations

import logging
import os

import numpy as np

from facebot.models import network_input
from facebot.models.facenet import EMBEDDING_DIM, INPUT_SIZE, load_facenet, load_facenet_tflite

log = logging.getLogger(__name__)

MODEL_ID = "facenet-20180408-102900"


BACKENDS = ("tflite-int8", "tflite", "tf")
DEFAULT_BACKEND = "tflite-int8"


class Embedder:
    """FaceNet Inception-ResNet-v1, loaded once; embeds crops in batches.

    Backends ($FACEBOT_EMBEDDER overrides the default), all from the same SHA-checked graph:
    "tflite-int8" (default) stores the weights as int8 (TFLite dynamic-range quantization,
    models/facenet.py) and runs with XNNPACK: about 3x faster than "tflite", the graph with
    float32 weights, whose embeddings it matches within 0.025. "tf" runs the frozen graph
    through TensorFlow (equal to "tflite" within 1e-6). The default rule and the cohort
    were derived on float embeddings ("tflite"; lab/defaults.py); on Georgia Tech int8
    gives the same open-set figures within 0.1 point at five seeds (README, "Decision
    rule"). The features id is the same for all three: one face's embeddings lie far
    closer together than the rule's thresholds.
    """

    features_id = MODEL_ID
    dim = EMBEDDING_DIM

    def __init__(self, batch_size: int = 16, backend: str | None = None):
        backend = backend or os.environ.get("FACEBOT_EMBEDDER", DEFAULT_BACKEND)
        if backend not in BACKENDS:
            raise ValueError(f"unknown embedder backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self._net = None
        if backend.startswith("tflite"):
            try:
                self._net = load_facenet_tflite(quantized=backend == "tflite-int8")
            except Exception as exc:  # no writable cache, no TFLite in this TensorFlow build
                log.warning("TFLite FaceNet unavailable (%s); using plain TensorFlow", exc)
                backend = "tf"
        self.backend = backend
        self._net = self._net or load_facenet()
        self.batch_size = batch_size

    def embed(self, crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """Embed uint8 RGB crops of shape (N, 160, 160, 3); return float32 (N, 512)."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"expected crops of shape (N, {INPUT_SIZE}, {INPUT_SIZE}, 3), got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        parts = [self._net(network_input(crops[i : i + self.batch_size])) for i in range(0, len(crops), self.batch_size)]
        return np.concatenate(parts).astype(np.float32)
