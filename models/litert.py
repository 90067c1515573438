"""The TFLite interpreter: LiteRT (`ai-edge-litert`) where it is installed, else TensorFlow's.

TensorFlow 2.21 deprecates `tf.lite.Interpreter` in favour of LiteRT, and a later release
removes it. Both run the same XNNPACK kernels here (FaceNet, one face: 18.7 ms either way on
the 2-core machine), so LiteRT is a drop-in. Where neither exists, the caller must fall
back to plain TensorFlow, which is slower: that is logged as a warning, never silent.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import warnings

log = logging.getLogger(__name__)


# What the runtime prints to stderr, once per process, at the first allocation: XNNPACK taking
# over. Said from C++, where Python's logging cannot reach or quiet it.
DELEGATE_NOTICE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."

_first_allocation = threading.Lock()
_allocated_once = False


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


def allocate(interpreter) -> None:
    """interpreter.allocate_tensors(), with the process's stderr caught during its first call.

    The runtime applies XNNPACK at the first allocation and announces it on stderr
    (DELEGATE_NOTICE): a line every `facebot` command would otherwise print. Anything else
    written there meanwhile (by the runtime, or by another thread) is logged as a warning,
    not lost. Later calls, and processes without a stderr file descriptor, allocate plainly.
    """
    global _allocated_once
    with _first_allocation:
        first = not _allocated_once
        if first:
            with _caught_stderr() as caught:
                interpreter.allocate_tensors()
            _allocated_once = True
    if not first:
        interpreter.allocate_tensors()
        return
    for line in caught:
        if line.strip() and line.strip() != DELEGATE_NOTICE:
            log.warning("stderr: %s", line)


@contextlib.contextmanager
def _caught_stderr():
    """File descriptor 2 sent to a temporary file for the block; yields a list that holds the
    lines written there once the block ends (none where fd 2 cannot be moved)."""
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no fd 2 (a service without one), or no stderr object
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += sink.read().decode("utf-8", "replace").splitlines()
