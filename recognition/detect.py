"""Face detectors: MTCNN (default, weights from the `mtcnn` package) and OpenCV's Haar cascade.

Every detector takes an RGB uint8 array and returns a list of Face, biggest first.

MTCNN looks in passes (see MTCNNDetector.detect): first at a small size, where a photo's
usual faces are found in a few milliseconds, and again at a larger size only when the
faces found are small enough that smaller ones may have been missed, or none was found.
Each pass pads the frame with grey so that faces cut by the photo's edge are found too.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

log = logging.getLogger(__name__)

DETECTORS = ("mtcnn", "haar")
# The landmarks of an MTCNN row ([x1, y1, x2, y2, score, 5 landmark x, 5 landmark y]), in the
# package's order
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# A face whose eyes slope by more than this (degrees) is cut out turned upright: FaceNet
# knows upright faces (a face tilted 50 degrees, cut as it lies, is 0.88 from itself
# upright on average on 25 LFW photos). Below it crops stay as they always were. Such a face
# is looked at again turned upright (MTCNNDetector._upright), for its angle and its box as it
# stands: chosen on 125 Georgia Tech photos turned by 10 to 75 degrees either way, faces
# within 0.4 of themselves upright went from 54.6% to 92.7% (from 30 degrees: 88.6%; a
# 320-px second look: 91.8%); LFW, reported: 52.5% to 89.6%.
UPRIGHT_FROM = 20.0
# Past this tilt MTCNN's landmarks on a face it found upright can point the wrong way (a head
# lying on its left side read as lying on its right): the angle is checked by a second look.
SURE_UP_TO = 45.0

# What the padding is filled with: (128 - 127.5) / 128 is about 0 once MTCNN normalises the
# pixels, the value its own patch cutting uses outside the image. Measured on 468 LFW faces
# cut 20-50% by an edge: no padding found 350, black padding 379-418, grey 427-433.
PAD_GREY = 128


@dataclass(frozen=True)
class Face:
    """One detected face: box as (x, y, w, h) in image pixels (inside the image), a
    confidence, landmarks, `extent`: the whole face's box, which reaches outside the image
    where the face is cut by its edge (None: the same as `box`), and `angle`: degrees the
    face's square must be turned (counter-clockwise, as cv2.getRotationMatrix2D) to stand
    upright, for a face found lying on its side (0: upright)."""

    box: tuple[int, int, int, int]
    score: float = 1.0
    landmarks: dict[str, tuple[int, int]] = field(default_factory=dict)
    extent: tuple[int, int, int, int] | None = None
    angle: float = 0.0

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]

    @property
    def whole_box(self) -> tuple[int, int, int, int]:
        """The box to cut the face from: `extent` where the edge cuts the face, else `box`."""
        return self.extent or self.box

    @property
    def visible(self) -> float:
        """The share of the whole face's box that lies inside the photo: 1.0 for a face the
        photo's edge does not cut."""
        _, _, w, h = self.whole_box
        # (the box and the extent are rounded apart: a face just inside could read a hair over 1)
        return min(1.0, self.area / max(1.0, float(w * h)))


def _clip_box(x: float, y: float, w: float, h: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1 - x0, y1 - y0


def shrink(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float, float]:
    """The image scaled so its longer side is `side` (never enlarged), and the scale back:
    (small, original width / small width, original height / small height).

    Halves with INTER_AREA while the image is at least twice too big (exact 2x2 means are
    OpenCV's fast path: a 12-megapixel photo comes down to 320 px in a few ms, against
    40 ms for one non-integer area resize), then INTER_LINEAR for the last step, which is
    under 2x and so skips no pixel.
    """
    height, width = rgb.shape[:2]
    if max(height, width) <= side:
        return rgb, 1.0, 1.0
    ratio = side / max(height, width)
    target = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    img = rgb
    while img.shape[1] >= 2 * target[0] and img.shape[0] >= 2 * target[1]:
        even = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
        img = cv2.resize(even, (even.shape[1] // 2, even.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if (img.shape[1], img.shape[0]) != target:
        img = cv2.resize(img, target, interpolation=cv2.INTER_LINEAR)
    return img, width / target[0], height / target[1]


def roll(landmarks: dict[str, tuple[float, float]]) -> float:
    """Degrees a face is turned clockwise (y grows downwards), from its landmarks: turning it
    by this many degrees counter-clockwise makes it upright. 0 without eyes and mouth.

    Measured along the line from between the eyes to between the mouth corners, and along
    the eye line; the two agree on an upright face, but on a face lying on its side MTCNN
    can swap the eyes (the eye line then reads 180 degrees off), never the eyes and mouth.
    """
    needed = ("left_eye", "right_eye", "mouth_left", "mouth_right")
    if any(k not in landmarks for k in needed):
        return 0.0
    (lx, ly), (rx, ry), (mlx, mly), (mrx, mry) = (landmarks[k] for k in needed)
    down_x, down_y = (mlx + mrx - lx - rx) / 2, (mly + mry - ly - ry) / 2
    along_down = np.degrees(np.arctan2(-down_x, down_y))
    along_eyes = np.degrees(np.arctan2(ry - ly, rx - lx))
    gap = (along_eyes - along_down + 180) % 360 - 180
    return float(along_down + gap / 2) if abs(gap) < 45 else float(along_down)


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two (x, y, w, h) boxes are the same face: either's centre lies inside the other."""
    def centre_inside(p, q):
        cx, cy = p[0] + p[2] / 2, p[1] + p[3] / 2
        return q[0] <= cx < q[0] + q[2] and q[1] <= cy < q[1] + q[3]

    return centre_inside(a, b) or centre_inside(b, a)


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


@dataclass(frozen=True)
class _Pass:
    """What one detection pass found: faces in the photo's pixels, and the smallest face's
    side in the pass's own pixels (inf when none), which decides whether to look closer."""

    faces: list[Face]
    smallest: float


# The turns tried where no face is found upright (MTCNNDetector.detect): MTCNN finds faces
# tilted up to about 45 degrees, so turns every 60 degrees leave no angle out. Measured on 125
# LFW and Georgia Tech photos turned by 125, 150, 180, -150 and -125 degrees, faces cropped
# upright (embedding within 0.6 of the upright photo's): 17, 2, 0, 2 and 8 with the first two
# turns alone; 82, 67, 82, 67 and 64 with these (the rest: the upright pass takes an upside-
# down face for an upright one, so no turn is tried); no more boxes in 120 faceless frames.
ALL_TURNS = (60.0, -60.0, 120.0, -120.0, 180.0)
# A camera mounted for people walking by: every empty frame tries the turns, so only the two
# for heads tilted sideways (15 to 105 degrees either way)
CAMERA_TURNS = (60.0, -60.0)


class MTCNNDetector:
    """MTCNN (Zhang et al. 2016) with weights from the `mtcnn` wheel; finds faces and 5 landmarks.

    Engines, each with the same boxes (within a pixel; tests/test_recognition.py):
    the default `lite` runs the whole cascade on TFLite with OpenCV and NumPy around it
    (models.mtcnn_lite.LiteMTCNN). Switching off any of `compiled`, `float32` or
    `tflite_pnet` runs the `mtcnn` package's own code instead, with those speed-ups:
    `compiled` runs RNet and ONet as TensorFlow graphs, `float32` keeps the pixels in
    float32, `tflite_pnet` runs the proposal network with TFLite; all three off is the
    package as it comes.

    Passes (see detect): the first at `first_side` px (the longer side), then, where
    needed, closer, up to `max_side` (a photo is never enlarged; a panorama further, see
    closest_side). Faces down to `min_face` px at the pass's size are found, so at
    `max_side` = 1024 down to 2% of the photo's longer side. `first_side=None` looks once,
    at `max_side`. Each pass pads the frame by `pad` of its longer side with grey, for
    faces cut by the edge. MTCNN finds faces tilted up to about 45 degrees (measured on 25
    LFW photos: all up to 35, 24 at 45, 13 at 60, 1 at 90); where no face is found at all,
    the first pass is repeated on the photo turned by each of `turns` degrees: by default
    every 60 degrees, so a head at any angle can be found, a photo upside down included (a
    phone held so, its EXIF orientation lost; see ALL_TURNS for how often). A face tilted
    20 degrees or more gets the `angle` that stands its crop upright. The turns cost time only where no face is found (about 25 ms more per faceless photo
    than the two turns of the first release; the camera keeps those two: CAMERA_TURNS).
    """

    name = "mtcnn"

    def __init__(self, min_confidence: float = 0.85, min_face: int = 20, max_side: int = 1024, compiled: bool = True,
                 float32: bool = True, tflite_pnet: bool = True, lite: bool = True, pad: float = 0.05,
                 first_side: int | None = 320, escalate_below: float = 2.5, turns: tuple[float, ...] = ALL_TURNS):
        self.min_confidence = min_confidence
        self.min_face = min_face
        self.max_side = max_side
        self.pad = pad
        self.first_side = first_side
        self.escalate_below = escalate_below
        self.turns = turns
        self._lite = None
        if lite and compiled and float32 and tflite_pnet:
            from facebot.models.facenet import WeightsMismatch
            from facebot.models.mtcnn_lite import LiteMTCNN

            try:
                self._lite = LiteMTCNN.from_package()
            except WeightsMismatch:
                raise  # the package's own code would load the same files: no fallback
            except Exception as exc:  # no TFLite converter or interpreter in this installation
                log.warning("TFLite MTCNN unavailable (%s); using the mtcnn package's code", exc)
        self._mtcnn = None if self._lite else self._package(compiled, float32, tflite_pnet)

    @property
    def engine(self) -> str:
        """'lite' (the whole cascade on TFLite) or 'package' (the `mtcnn` package's code)."""
        return "lite" if self._lite else "package"

    @classmethod
    def _package(cls, compiled: bool, float32: bool, tflite_pnet: bool):
        """The `mtcnn` package's MTCNN with the chosen speed-ups."""
        from mtcnn import MTCNN

        from facebot.models.mtcnn_lite import lite_pnet, package_stages

        stages = list(package_stages())
        pnet = lite_pnet(stages[0]._model) if tflite_pnet else None
        if compiled:
            cls._compile_stages(stages)
        if pnet is not None:
            stages[0]._model = pnet
        return MTCNN(stages=[_Float32Stage(s) for s in stages] if float32 else stages)

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

    def _raw(self, rgb: np.ndarray, max_face: float | None = None) -> np.ndarray:
        """The engine's faces in `rgb`: rows [x1, y1, x2, y2, score, 5 landmark x, 5 landmark y]
        in its pixels, not clipped to it. `max_face`: bigger faces need not be looked for (the
        lite engine then skips those pyramid levels; the package's looks anyway)."""
        if self._lite is not None:
            return self._lite.detect(rgb, self.min_face, max_face)
        rows = self._mtcnn.detect_faces(np.ascontiguousarray(rgb), min_face_size=self.min_face, fit_to_image=False,
                                        output_type="numpy", box_format="xyxy")
        return np.asarray(rows, np.float64).reshape(-1, 16)[:, 1:]

    def _pass(self, rgb: np.ndarray, side: int, max_face: float | None = None) -> _Pass:
        """Detect in `rgb` shrunk to `side` px and padded; boxes in `rgb`'s pixels. Faces
        bigger than `max_face` px at that size need not be found (None: any size)."""
        height, width = rgb.shape[:2]
        small, sx, sy = shrink(rgb, side)
        pad = int(round(self.pad * max(small.shape[:2])))
        if pad:
            small = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(PAD_GREY,) * 3)
        faces, smallest = [], float("inf")
        for row in self._raw(np.ascontiguousarray(small), max_face):
            if float(row[4]) < self.min_confidence:
                continue
            x1, x2 = (row[0] - pad) * sx, (row[2] - pad) * sx
            y1, y2 = (row[1] - pad) * sy, (row[3] - pad) * sy
            box = _clip_box(x1, y1, x2 - x1, y2 - y1, width, height)
            if box is None:
                continue
            whole = tuple(int(round(v)) for v in (x1, y1, x2 - x1, y2 - y1))
            marks = {k: (int(round((row[5 + i] - pad) * sx)), int(round((row[10 + i] - pad) * sy)))
                     for i, k in enumerate(LANDMARKS)}
            tilt = roll(marks)
            if abs(tilt) >= UPRIGHT_FROM and (upright := self._upright(rgb, whole, tilt)) is not None:
                tilt, whole = upright
                box = _clip_box(*whole, width, height) or box
            faces.append(Face(box, float(row[4]), marks, whole if whole != box else None,
                              tilt if abs(tilt) >= UPRIGHT_FROM else 0.0))
            smallest = min(smallest, float(min(row[2] - row[0], row[3] - row[1])))
        return _Pass(faces, smallest)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Return the faces in an RGB image, biggest first.

        The first pass runs at `first_side`. Its faces are the answer when they are all at
        least `escalate_below` x `min_face` px there (50 px by default; 45 accepted, as a
        face's box varies by a few pixels from one size to the next): faces much smaller
        than the smallest one found are then unlikely. Otherwise the next pass looks at the
        size where that smallest face becomes 50 px, so faces down to 2/5 of it are found
        (a group photo: people further back), or straight at the closest look
        (closest_side) when nothing was found; and so on. A face an earlier pass found and
        a later one missed is kept.
        """
        top = self.closest_side(rgb.shape[1], rgb.shape[0])
        side = top if self.first_side is None else min(self.first_side, top)
        enough = self.escalate_below * self.min_face
        found: list[Face] = []
        trusted = None  # faces bigger than this (px at `side`) an earlier pass already sees well
        while True:
            result = self._pass(rgb, side, trusted)
            found = result.faces + [f for f in found if not any(overlaps(f.box, g.box) for g in result.faces)]
            if side >= top or (result.faces and result.smallest >= 0.9 * enough):
                break
            if trusted is not None and not result.faces:
                break  # a closer pass found no smaller face: the earlier passes' faces stand
            wanted = max(side * enough / result.smallest, 1.5 * side) if result.faces else top
            # a multiple of 64: photos of the same shape reuse the networks' planned input sizes
            closer = int(min(top, -(-wanted // 64) * 64))
            # a face this pass saw at `enough` px or more it would have given as the answer
            # alone; the closer pass looks only for smaller ones (its biggest pyramid levels
            # are skipped), and a face it does not find again is kept from this pass
            trusted = 0.9 * enough * closer / side if result.faces else None
            side = closer
        if not found and self.turns:
            # every turn: a head lying 90 degrees one way is sometimes also found, less surely,
            # upside down in the turn the other way; the turn whose best face is surest wins
            first = top if self.first_side is None else min(self.first_side, top)
            found = max((self._turned_pass(rgb, first, angle) for angle in self.turns),
                        key=lambda faces: max((f.score for f in faces), default=0.0))
        return sorted(found, key=lambda f: f.area, reverse=True)

    def closest_side(self, width: int, height: int) -> int:
        """The longer side of the closest look at a `width` x `height` photo: `max_side`, or
        for a photo more than twice as long as it is high (a panorama) as much as keeps its
        shorter side at `max_side` / 2, so its faces are not shrunk away (a 16000 x 3000
        panorama: 2731 x 512, not 1024 x 192); never more than the photo's own."""
        longest, shortest = max(width, height), max(1, min(width, height))
        return min(longest, max(self.max_side, round(self.max_side / 2 * longest / shortest)))

    def _upright(self, rgb: np.ndarray, whole: tuple[int, int, int, int],
                 tilt: float) -> tuple[float, tuple[int, int, int, int]] | None:
        """A tilted face, looked at again upright: (the angle that stands it up, its box as it
        stands, around its centre in `rgb`), or None where it is not found again. `whole` is
        the box the tilted face was found in (the box of a face lying askew is too big and
        off-centre for a crop) and `tilt` what its landmarks read: the square around it is
        turned by `tilt` (and, past SURE_UP_TO, by -90 and 90 too: the landmarks can point
        the wrong way) and looked at again (at most 160 px, a few ms each); the surest face
        found near the middle gives its turn plus the slope still left there, and its box."""
        x, y, w, h = whole
        side = int(max(w, h) * 1.6)
        cx, cy = x + w / 2, y + h / 2
        scale = min(1.0, 160 / side)
        size = int(round(side * scale))
        best, found = 0.0, None
        for turn in (-90.0, 90.0, tilt) if abs(tilt) > SURE_UP_TO else (tilt,):
            # photo -> square of `side` around the face, turned by `turn`, shrunk to `size` px
            matrix = cv2.getRotationMatrix2D((cx, cy), turn, scale)
            matrix[:, 2] += (size / 2 - cx, size / 2 - cy)
            square = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                    borderValue=(PAD_GREY,) * 3)
            back = cv2.invertAffineTransform(matrix)
            for row in self._raw(square):
                mx, my = (row[0] + row[2]) / 2, (row[1] + row[3]) / 2
                if abs(mx - size / 2) < size / 4 and abs(my - size / 2) < size / 4 and row[4] > best:
                    marks = {k: (row[5 + i], row[10 + i]) for i, k in enumerate(LANDMARKS)}
                    px, py = back @ np.array([mx, my, 1.0])
                    fw, fh = (row[2] - row[0]) / scale, (row[3] - row[1]) / scale
                    best = float(row[4])
                    found = turn + roll(marks), tuple(int(round(v)) for v in (px - fw / 2, py - fh / 2, fw, fh))
        return found

    def _turned_pass(self, rgb: np.ndarray, side: int, angle: float) -> list[Face]:
        """Detect in `rgb` shrunk to `side` px and turned by `angle` degrees (on a canvas big
        enough to hold it, grey around); faces mapped back into `rgb`'s pixels, their
        `angle` set so a crop can turn them upright."""
        small, sx, sy = shrink(rgb, side)
        height, width = small.shape[:2]
        turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
        size = (int(np.ceil(width * cos + height * sin)), int(np.ceil(width * sin + height * cos)))
        turn[:, 2] += (size[0] - width) / 2, (size[1] - height) / 2
        turned = cv2.warpAffine(small, turn, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=(PAD_GREY,) * 3)
        back = cv2.invertAffineTransform(turn)
        faces = []
        for face in self._pass(turned, max(size)).faces:
            x, y, w, h = face.whole_box
            cx, cy = back @ np.array([x + w / 2, y + h / 2, 1.0])
            whole = (cx - w / 2) * sx, (cy - h / 2) * sy, w * sx, h * sy
            box = _clip_box(*whole, rgb.shape[1], rgb.shape[0])
            if box is None:
                continue
            marks = {k: tuple(int(round(v * f)) for v, f in zip(back @ np.array([px, py, 1.0]), (sx, sy)))
                     for k, (px, py) in face.landmarks.items()}
            whole = tuple(int(round(v)) for v in whole)
            # the turn, plus how far the eyes still slope in the turned frame (where the face is
            # nearly upright, so its landmarks are reliable)
            faces.append(Face(box, face.score, marks, whole if whole != box else None,
                              angle + (face.angle or roll(face.landmarks))))
        return faces


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
