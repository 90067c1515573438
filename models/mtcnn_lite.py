"""MTCNN's three networks run by TFLite with XNNPACK, the rest in OpenCV and NumPy.

The `mtcnn` package runs PNet through TensorFlow once per level of the image pyramid
(about ten levels for a 640x480 frame), resizes each level and cuts the RNet and ONet
patches with TensorFlow ops, and calls RNet and ONet eagerly. The networks are tiny, so
per-call overhead and TensorFlow's generic kernels dominate.

Two ways to go faster, both with the package's weights (converted to TFLite in memory,
about a second at start-up, nothing downloaded):

- `TFLitePNet` replaces only the package's PNet model (the package still drives the
  rest): outputs equal within 1e-5, less than half the PNet time.
- `LiteMTCNN` runs the whole cascade itself: the same algorithm as the package's
  (same pyramid scales, thresholds and box regression, reused from `mtcnn.utils.bboxes`,
  and its NMS rewritten row for row, `nms`), with the pyramid resized by OpenCV (INTER_AREA equals
  TensorFlow's AREA resize within 1e-5), patches cut as `tf.image.crop_and_resize`
  cuts them (by one cv2.remap), and all three networks on TFLite. Boxes agree with the
  package's within a pixel, about 3x faster on a 640x480 frame.

An interpreter is planned for one input shape; re-planning it costs more than the call.
So one interpreter is kept per input shape, the most recently used few dozen of them:
a camera or a stream of same-sized photos always finds its pyramid shapes ready, and
RNet/ONet batches are padded (see `bucket`) so a dozen shapes serve them all.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from facebot.models import network_input

log = logging.getLogger(__name__)

PATCH_BATCH = 256  # RNet/ONet patches per call at most
REMAP_ROWS = 32766  # rows of one cv2.remap map at most (it asserts fewer than SHRT_MAX)

# The `mtcnn` wheel's weights (mtcnn/assets/weights/NAME.lz4), with which detection was
# measured and the decision rule calibrated; pyproject.toml pins the version.
MTCNN_VERSION = "1.0.0"
MTCNN_WEIGHTS_SHA256 = {
    "pnet": "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5",
    "rnet": "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee",
    "onet": "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3",
}


def mtcnn_weights(folder: Path | None = None) -> dict[str, Path]:
    """{"pnet", "rnet", "onet"}: the absolute path of each network's weights in `folder`
    (None: the installed `mtcnn` wheel's), each checked against MTCNN_WEIGHTS_SHA256.
    Raises WeightsMismatch for a file missing or with other bytes."""
    from facebot.models.facenet import WeightsMismatch

    if folder is None:
        spec = importlib.util.find_spec("mtcnn")
        if spec is None or spec.origin is None:
            raise WeightsMismatch(f"the mtcnn package is not installed: pip install mtcnn=={MTCNN_VERSION}")
        folder = Path(spec.origin).parent / "assets" / "weights"
    paths = {}
    for name, expected in MTCNN_WEIGHTS_SHA256.items():
        path = (Path(folder) / f"{name}.lz4").resolve()
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise WeightsMismatch(f"{path} cannot be read ({exc.strerror}): reinstall mtcnn=={MTCNN_VERSION}") from exc
        if digest != expected:
            raise WeightsMismatch(f"{path} has SHA-256 {digest}, expected {expected}: reinstall mtcnn=={MTCNN_VERSION}")
        paths[name] = path
    return paths


def package_stages(folder: Path | None = None) -> tuple:
    """The `mtcnn` package's PNet, RNet and ONet stages, built from the checked weights
    (mtcnn_weights). Each file is named by its absolute path: given the bare name the package
    defaults to, it would first unpickle a file of that name in the current folder."""
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    paths = mtcnn_weights(folder)
    return StagePNet(weights=str(paths["pnet"])), StageRNet(weights=str(paths["rnet"])), StageONet(weights=str(paths["onet"]))


def bucket(count: int) -> int:
    """The batch size `count` patches are padded to: the next power of two up to 32, then
    the next multiple of 32, so a dozen interpreter shapes serve every count, wasting little."""
    return 1 << (count - 1).bit_length() if count <= 32 else -(-count // 32) * 32


def convert_to_tflite(keras_model, shape: tuple = (1, None, None, 3)) -> bytes:
    """The Keras model as a float32 TFLite flatbuffer for inputs of `shape` (None: free)."""
    import tensorflow as tf

    spec = tf.TensorSpec(list(shape), tf.float32)
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


class TFLiteNet:
    """A Keras model converted to TFLite: float32 batch in, its outputs out as NumPy arrays,
    ordered by their last dimension, largest first (PNet/RNet: regression 4, face
    probability 2; ONet: landmarks 10, regression 4, probability 2).

    Thread-safe (one lock: TFLite interpreters are not), keeping up to `shapes`
    interpreters, one per input shape.
    """

    def __init__(self, keras_model, input_shape: tuple = (1, None, None, 3), shapes: int = 48, threads: int | None = None):
        self._blob = convert_to_tflite(keras_model, input_shape)
        self._threads = threads or os.cpu_count() or 1
        self._interpreters: OrderedDict[tuple, tuple] = OrderedDict()
        self._shapes = shapes
        self._lock = threading.Lock()

    def _interpreter(self, shape: tuple) -> tuple:
        """(interpreter, input index, output indices by channels, largest first) for one shape."""
        from facebot.models.litert import allocate, make_interpreter

        if shape in self._interpreters:
            self._interpreters.move_to_end(shape)
            return self._interpreters[shape]
        interpreter = make_interpreter(model_content=self._blob, threads=self._threads)
        inp = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(inp, list(shape))
        allocate(interpreter)
        # the outputs' order is the converter's choice: tell them apart by channels
        outputs = sorted(interpreter.get_output_details(), key=lambda d: -int(d["shape"][-1]))
        entry = (interpreter, inp, [d["index"] for d in outputs])
        self._interpreters[shape] = entry
        if len(self._interpreters) > self._shapes:
            self._interpreters.popitem(last=False)
        return entry

    def run(self, images: np.ndarray) -> list[np.ndarray]:
        """Outputs for one input batch (copies: the interpreter reuses its buffers)."""
        batch = np.ascontiguousarray(images, dtype=np.float32)
        with self._lock:
            interpreter, inp, outputs = self._interpreter(batch.shape)
            interpreter.set_tensor(inp, batch)
            interpreter.invoke()
            return [interpreter.get_tensor(index).copy() for index in outputs]


class TFLitePNet(TFLiteNet):
    """Callable like the package's PNet: (1, H, W, 3) float32 normalised pixels in,
    (box regression (1, h, w, 4), face probability (1, h, w, 2)) tensors out."""

    def __init__(self, keras_model, shapes: int = 48, threads: int | None = None):
        super().__init__(keras_model, (1, None, None, 3), shapes=shapes, threads=threads)

    def __call__(self, images) -> list:
        import tensorflow as tf

        # the package's box decoding calls .numpy() on what PNet returns
        return [tf.constant(output) for output in self.run(np.asarray(images))]


def lite_pnet(keras_model) -> Callable | None:
    """A TFLitePNet for the model, or None (with a warning) where TFLite cannot convert it."""
    try:
        return TFLitePNet(keras_model)
    except Exception as exc:  # a TensorFlow build without the TFLite converter
        log.warning("TFLite PNet unavailable (%s); using TensorFlow", exc)
        return None


# -- the whole cascade ------------------------------------------------------------------------

@dataclass(frozen=True)
class Thresholds:
    """The package's defaults: face probability each stage needs, and its NMS overlaps."""

    pnet: float = 0.6
    rnet: float = 0.7
    onet: float = 0.8
    nms_pnet_scale: float = 0.5
    nms_pnet: float = 0.7
    nms_rnet: float = 0.7
    nms_onet: float = 0.7
    scale_factor: float = 0.709


def crop_and_resize(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """tf.image.crop_and_resize (bilinear, extrapolation 0) for one image, by one cv2.remap.

    image: (H, W, C) float32; boxes: (N, 4) as [y1, x1, y2, x2] normalised by H and W
    (the package's convention, so box edges map to y1 * (H - 1)); returns (N, size, size, C).
    A sample row or column that falls outside the image is all zeros, as in TensorFlow.

    All N patches are sampled in one remap call, stacked as one (N * size, size) map: a
    dozen times faster than gathering the four neighbours with NumPy (0.4 against 6.2 ms
    for 110 RNet patches). OpenCV interpolates on a 1/32-pixel grid, so values differ from
    TensorFlow's by two levels of a uint8 pixel at most, at a sharp edge, and far less on
    average; the boxes found are the same (tests/test_recognition.py).
    """
    height, width = image.shape[:2]
    count = len(boxes)
    if not count:
        return np.zeros((0, size, size, image.shape[2]), np.float32)
    steps = np.arange(size, dtype=np.float32) / (size - 1)
    y1, x1, y2, x2 = (boxes[:, i : i + 1].astype(np.float32) for i in range(4))
    ys = y1 * (height - 1) + steps * (y2 - y1) * (height - 1)  # (N, size)
    xs = x1 * (width - 1) + steps * (x2 - x1) * (width - 1)
    # TensorFlow zeroes a whole row or column that starts outside; remap would blend the
    # border into the first pixel, so such samples are sent well outside instead
    ys[(ys < 0) | (ys > height - 1)] = -2.0
    xs[(xs < 0) | (xs > width - 1)] = -2.0
    map_y = np.repeat(ys[:, :, None], size, axis=2).reshape(count * size, size)
    map_x = np.repeat(xs[:, None, :], size, axis=1).reshape(count * size, size)
    # OpenCV's remap takes maps of fewer than 32767 rows: 1,365 RNet patches at most per call
    # (a crowd, or a busy background, gives PNet thousands of candidates)
    rows = (REMAP_ROWS // size) * size
    chunks = [cv2.remap(image, map_x[i : i + rows], map_y[i : i + rows], cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
              for i in range(0, count * size, rows)]
    out = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)  # one chunk: no copy
    return out.reshape(count, size, size, image.shape[2]).astype(np.float32, copy=False)


def nms(rows: np.ndarray, threshold: float, method: str = "union", initial_sort: bool = True) -> np.ndarray:
    """The package's smart_nms_from_bboxes for rows of one image ([image id, x1, y1, x2, y2,
    score, ...]): sorted by score, best first, when `initial_sort`; a row is dropped when
    any row before it overlaps it by more than `threshold` (intersection over union, or over
    the smaller box for "min"), whether or not that row was itself dropped, as the package
    does. Same rows in the same order (tests/test_recognition.py), with less NumPy overhead:
    it is called a dozen times per pass, and detection took 8.9 against 9.6 ms on a 0.3 MP
    one-face photo, 43 against 45 ms on a 0.3 MP group and 68 against 72 ms at 1 MP.
    """
    if initial_sort:
        rows = rows[np.argsort(rows[:, 5])[::-1]]  # the package's descending order, ties alike
    if len(rows) < 2:
        return rows
    a, b = rows[:, None, 1:5], rows[None, :, 1:5]
    across = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
    down = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]))
    overlap = across * down
    area = (rows[:, 3] - rows[:, 1]) * (rows[:, 4] - rows[:, 2])
    if method == "union":
        base = area[:, None] + area[None, :] - overlap
    elif method == "min":
        base = np.minimum(area[:, None], area[None, :])
    else:
        raise ValueError("method is 'union' or 'min'")
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 is nan, which suppresses nothing
        covered = np.triu(overlap / base > threshold, k=1).any(axis=0)
    return rows[~covered]


def _pnet_boxes(regression: np.ndarray, probability: np.ndarray, threshold: float, scale: float) -> np.ndarray:
    """The package's generate_bounding_box + upscale_bboxes: rows [0, x1, y1, x2, y2, score]
    in the pyramid level's input pixels divided by `scale`, best score first."""
    score = probability[0, :, :, 1]
    ys, xs = np.where(score > threshold)
    reg = regression[0, ys, xs].T  # (4, n)
    stride, cell = 2, 12
    x1, y1 = xs * stride + 1, ys * stride + 1
    x2, y2 = xs * stride + cell, ys * stride + cell
    w, h = x2 - x1, y2 - y1
    rows = np.stack([np.zeros(len(xs)), x1 + reg[0] * w, y1 + reg[1] * h, x2 + reg[2] * w, y2 + reg[3] * h,
                     score[ys, xs]], axis=0).T
    rows = rows[np.argsort(rows[:, -1])[::-1]]
    rows[:, 1:5] /= scale
    return rows


class LiteMTCNN:
    """MTCNN (PNet, RNet, ONet) from the `mtcnn` package's Keras models, run on TFLite.

    `detect` takes an RGB uint8 image and returns rows
    [x1, y1, x2, y2, confidence, 5 landmark x, 5 landmark y] in its pixels, not clipped to
    the image (a face cut by the edge keeps its whole box). Thread-safe.
    """

    def __init__(self, pnet_keras, rnet_keras, onet_keras, threads: int | None = None,
                 thresholds: Thresholds = Thresholds()):
        # about 11 pyramid levels per pass size: room for the sizes of several passes
        self.pnet = TFLiteNet(pnet_keras, (1, None, None, 3), shapes=96, threads=threads)
        self.rnet = TFLiteNet(rnet_keras, (None, 24, 24, 3), threads=threads)
        self.onet = TFLiteNet(onet_keras, (None, 48, 48, 3), threads=threads)
        self.thresholds = thresholds

    @classmethod
    def from_package(cls, threads: int | None = None) -> "LiteMTCNN":
        """Built from the weights shipped in the `mtcnn` wheel."""
        pnet, rnet, onet = package_stages()
        return cls(pnet._model, rnet._model, onet._model, threads=threads)

    @staticmethod
    def scales(width: int, height: int, min_face: float, scale_factor: float) -> np.ndarray:
        """The package's pyramid (build_scale_pyramid): 12 / min_face, shrinking by scale_factor."""
        count = round(-((np.log(min(width, height) / 12) / np.log(scale_factor)) + 1))
        return (12 / min_face) * scale_factor ** np.arange(count)

    def _patches(self, net: TFLiteNet, image: np.ndarray, boxes: np.ndarray, size: int) -> list[np.ndarray]:
        """Run `net` on the `size`x`size` patches under `boxes` (package rows), in padded batches."""
        height, width = image.shape[:2]
        coords = boxes[:, [2, 1, 4, 3]] / np.array([height, width, height, width], np.float64)
        patches = crop_and_resize(image, coords, size)
        parts = []
        for start in range(0, len(patches), PATCH_BATCH):
            chunk = patches[start : start + PATCH_BATCH]
            padded = np.zeros((bucket(len(chunk)), size, size, 3), np.float32)
            padded[: len(chunk)] = chunk
            parts.append([out[: len(chunk)] for out in net.run(padded)])
        return [np.concatenate(outs) for outs in zip(*parts)]

    def detect(self, rgb: np.ndarray, min_face: float = 20, max_face: float | None = None) -> np.ndarray:
        """Faces in an RGB uint8 image as rows [x1, y1, x2, y2, score, lx1..lx5, ly1..ly5].

        `max_face` (px) leaves out the pyramid levels that look only for faces bigger than
        it (a level at scale s looks for faces of about 12 / s px); None: all of them."""
        from mtcnn.utils.bboxes import adjust_bboxes, pick_matches, resize_to_square

        t = self.thresholds
        none = np.zeros((0, 15))
        image = network_input(rgb)
        height, width = image.shape[:2]
        levels = []
        for scale in self.scales(width, height, min_face, t.scale_factor):
            if max_face is not None and 12 / scale > max_face:
                break  # the levels only get smaller from here
            size = (int(width * scale), int(height * scale))
            if min(size) < 1:
                continue
            level = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            regression, probability = self.pnet.run(level[None])
            rows = _pnet_boxes(regression, probability, t.pnet, scale)
            levels.append(nms(rows, t.nms_pnet_scale, "union", initial_sort=False))
        boxes = np.concatenate(levels) if levels else np.empty((0, 6))
        if not len(boxes):
            return none
        boxes = resize_to_square(nms(boxes, t.nms_pnet, "union"))

        regression, probability = self._patches(self.rnet, image, boxes, 24)
        boxes[:, -1] = probability[:, -1]
        boxes = pick_matches(adjust_bboxes(boxes, regression), score_threshold=t.rnet)
        if not len(boxes):
            return none
        boxes = resize_to_square(nms(boxes, t.nms_rnet, "union"))

        landmarks, regression, probability = self._patches(self.onet, image, boxes, 48)
        w = boxes[:, 3:4] - boxes[:, 1:2] + 1
        h = boxes[:, 4:5] - boxes[:, 2:3] + 1
        marks = np.concatenate([w * landmarks[:, 0:5] + boxes[:, 1:2] - 1, h * landmarks[:, 5:10] + boxes[:, 2:3] - 1], axis=1)
        boxes[:, -1] = probability[:, -1]
        boxes = np.concatenate([adjust_bboxes(boxes, regression), marks], axis=1)
        boxes = pick_matches(boxes, scores_column=5, score_threshold=t.onet)
        if not len(boxes):
            return none
        boxes = nms(boxes, t.nms_onet, "min")
        return boxes[:, 1:]
