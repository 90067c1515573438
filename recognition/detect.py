"""Face detectors: MTCNN (default, from the `mtcnn` package) and OpenCV's Haar cascade.

Every detector takes an RGB uint8 array and returns a list of Face, biggest first.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

log = logging.getLogger(__name__)

DETECTORS = ("mtcnn", "haar")


@dataclass(frozen=True)
class Face:
    """One detected face: box as (x, y, w, h) in image pixels, a confidence, and landmarks."""

    box: tuple[int, int, int, int]
    score: float = 1.0
    landmarks: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


def _clip_box(x: float, y: float, w: float, h: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1 - x0, y1 - y0


class _Float32Stage:
    """One MTCNN stage, fed float32 pixels.

    The `mtcnn` package normalises the photo into a float64 array and hands that to every
    stage; its pyramid resizing then runs in float64 and every network call converts the
    input to float32 first. Casting once per stage keeps the same numbers (the networks
    compute in float32 anyway) and takes a third off the detection time.
    """

    def __init__(self, stage):
        self.stage, self.name, self.id = stage, stage.name, stage.id

    def __call__(self, images_normalized, **kwargs):
        return self.stage(images_normalized=np.asarray(images_normalized, np.float32), **kwargs)


class MTCNNDetector:
    """MTCNN (Zhang et al. 2016) with weights from the `mtcnn` wheel; finds faces and 5 landmarks.

    Large photos are shrunk to `max_side` before detection (faces stay far above the
    `min_face` floor) and boxes are mapped back to the original pixels.

    Speed-ups over the package's plain path, each with the same boxes (benchmarks/):
    `compiled` runs RNet and ONet as TensorFlow graphs, `float32` keeps the pixels in
    float32, `tflite_pnet` runs the proposal network with TFLite (models.mtcnn_lite).
    """

    name = "mtcnn"

    def __init__(self, min_confidence: float = 0.85, min_face: int = 20, max_side: int = 1024, compiled: bool = True,
                 float32: bool = True, tflite_pnet: bool = True):
        from mtcnn import MTCNN
        from mtcnn.stages import StageONet, StagePNet, StageRNet

        from facebot.models.mtcnn_lite import lite_pnet

        stages = [StagePNet(), StageRNet(), StageONet()]
        pnet = lite_pnet(stages[0]._model) if tflite_pnet else None
        if compiled:
            self._compile_stages(stages)
        if pnet is not None:
            stages[0]._model = pnet
        self._mtcnn = MTCNN(stages=[_Float32Stage(s) for s in stages] if float32 else stages)
        self.min_confidence = min_confidence
        self.min_face = min_face
        self.max_side = max_side

    @staticmethod
    def _compile_stages(stages) -> None:
        """Run each of the three networks as one compiled TensorFlow graph.

        The `mtcnn` package calls its Keras models eagerly, layer by layer, once per
        pyramid scale; Python overhead then costs more than the convolutions. One
        tf.function per stage, with shapes left open so no photo size retraces, gives the
        same boxes about 2.5x faster.
        """
        import tensorflow as tf

        shapes = ([None, None, None, 3], [None, 24, 24, 3], [None, 48, 48, 3])  # PNet, RNet, ONet
        for stage, shape in zip(stages, shapes):
            stage._model = tf.function(stage._model, input_signature=[tf.TensorSpec(shape, tf.float32)])

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Return the faces in an RGB image, biggest first."""
        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
        raw = self._mtcnn.detect_faces(np.ascontiguousarray(small), min_face_size=self.min_face)
        faces = []
        for item in raw:
            if float(item["confidence"]) < self.min_confidence:
                continue
            x, y, w, h = (float(v) / scale for v in item["box"])
            box = _clip_box(x, y, w, h, width, height)
            if box is None:
                continue
            marks = {k: (int(round(float(v[0]) / scale)), int(round(float(v[1]) / scale))) for k, v in item["keypoints"].items()}
            faces.append(Face(box, float(item["confidence"]), marks))
        return sorted(faces, key=lambda f: f.area, reverse=True)


class HaarDetector:
    """OpenCV's frontal-face Haar cascade: the original project's detector. Fast, but misses
    faces that are turned or lit from the side."""

    name = "haar"

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_face: int = 30):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade from {path}")
        self.scale_factor, self.min_neighbors, self.min_face = scale_factor, min_neighbors, min_face

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Return the faces in an RGB image, biggest first."""
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_face, self.min_face)
        )
        faces = [Face(tuple(int(v) for v in box)) for box in found]
        return sorted(faces, key=lambda f: f.area, reverse=True)


def make_detector(name: str = "mtcnn"):
    """Build a detector by name: 'mtcnn' (default) or 'haar'."""
    if name == "mtcnn":
        return MTCNNDetector()
    if name == "haar":
        return HaarDetector()
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
