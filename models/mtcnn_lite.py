"""MTCNN's proposal network (PNet) run by TFLite with XNNPACK.

The `mtcnn` package runs PNet through TensorFlow once per level of the image pyramid
(about ten levels for a 640x480 frame). The network is tiny, so per-call overhead and
TensorFlow's generic kernels dominate; the same weights converted to TFLite (in memory,
about a second at start-up, nothing downloaded) and run with XNNPACK take less than half
the time, with outputs equal within 1e-5.

An interpreter is planned for one input shape; re-planning it costs more than the call.
So one interpreter is kept per pyramid shape, the most recently used few dozen of them:
a camera or a stream of same-sized photos always finds its shapes ready.
"""
from __future__ import annotations

import logging
import os
import threading
import warnings
from collections import OrderedDict
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)


def convert_to_tflite(keras_model) -> bytes:
    """The Keras model as a float32 TFLite flatbuffer with a free height and width (batch of one)."""
    import tensorflow as tf

    spec = tf.TensorSpec([1, None, None, 3], tf.float32)
    concrete = tf.function(lambda x: keras_model(x), input_signature=[spec]).get_concrete_function()
    # Passing the Keras model as `trackable_obj`, as the converter's deprecation warning
    # asks, gave NaN outputs with TensorFlow 2.21; the older path is exact, so keep it quiet.
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert()
    finally:
        absl.setLevel(level)


class TFLitePNet:
    """Callable like the package's PNet: (1, H, W, 3) float32 normalised pixels in,
    (box regression (1, h, w, 4), face probability (1, h, w, 2)) tensors out.

    Thread-safe (one lock: TFLite interpreters are not), keeping up to `shapes`
    interpreters, one per input shape.
    """

    def __init__(self, keras_model, shapes: int = 48, threads: int | None = None):
        self._blob = convert_to_tflite(keras_model)
        self._threads = threads or os.cpu_count() or 1
        self._interpreters: OrderedDict[tuple, tuple] = OrderedDict()
        self._shapes = shapes
        self._lock = threading.Lock()

    def _interpreter(self, shape: tuple) -> tuple:
        """(interpreter, input index, [regression index, probability index]) for one shape."""
        import tensorflow as tf

        if shape in self._interpreters:
            self._interpreters.move_to_end(shape)
            return self._interpreters[shape]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            interpreter = tf.lite.Interpreter(model_content=self._blob, num_threads=self._threads)
        inp = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(inp, list(shape))
        interpreter.allocate_tensors()
        # the outputs' order is the converter's choice: tell them apart by channels
        outputs = sorted(interpreter.get_output_details(), key=lambda d: -int(d["shape"][-1]))
        entry = (interpreter, inp, [d["index"] for d in outputs])
        self._interpreters[shape] = entry
        if len(self._interpreters) > self._shapes:
            self._interpreters.popitem(last=False)
        return entry

    def __call__(self, images) -> list:
        import tensorflow as tf

        batch = np.ascontiguousarray(images, dtype=np.float32)
        with self._lock:
            interpreter, inp, outputs = self._interpreter(batch.shape)
            interpreter.set_tensor(inp, batch)
            interpreter.invoke()
            # the package's box decoding calls .numpy() on what PNet returns
            return [tf.constant(interpreter.get_tensor(index)) for index in outputs]


def lite_pnet(keras_model) -> Callable | None:
    """A TFLitePNet for the model, or None (with a warning) where TFLite cannot convert it."""
    try:
        return TFLitePNet(keras_model)
    except Exception as exc:  # a TensorFlow build without the TFLite converter
        log.warning("TFLite PNet unavailable (%s); using TensorFlow", exc)
        return None
