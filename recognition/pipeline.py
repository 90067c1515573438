"""Detect -> crop -> embed -> match, with the models loaded once."""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebot.models.siamese.scorer import load_scorer
from facebot.recognition.align import BOX, SQUARE, CropStyle, crop_face
from facebot.recognition.decision import DEFAULT_RULE, DecisionRule, as_rule
from facebot.recognition.detect import make_detector
from facebot.recognition.embed import Embedder
from facebot.recognition.images import Photo
from facebot.recognition.match import DEFAULT_THRESHOLD, Matcher, Metric

log = logging.getLogger(__name__)

# Faces per photo at most (more raise TooManyFaces): a company's all-hands photo, not a
# stadium's crowd or a detector gone wrong. A photo of 100 faces takes about 1 s end to end
# on 2 cores (FaceNet about 4.4 ms a face in a batch), so one photo cannot hold the bot long.
MAX_FACES = 100


def _in_photo(box: tuple[int, int, int, int], photo: Photo) -> tuple[int, int, int, int]:
    """A box (x, y, w, h) in the decoded pixels of `photo`, in the photo's own pixels."""
    if not photo.reduced:
        return box
    sx, sy = photo.scale
    x0, y0 = round(box[0] * sx), round(box[1] * sy)
    x1, y1 = min(photo.size[0], round((box[0] + box[2]) * sx)), min(photo.size[1], round((box[1] + box[3]) * sy))
    return x0, y0, x1 - x0, y1 - y0


# A face narrower than this (px) in a photo decoded at reduced size is cut from sharper
# pixels: on degraded Georgia Tech photos (lab/small_faces.py) 4.8% of owners' faces of
# 40-64 px lie beyond the rule's high, 0.1% from 64 px.
SHARP_FACE = 64


class TooManyFaces(ValueError):
    """More faces than the sane cap: a crowd photo or a detector gone wrong."""


@dataclass(frozen=True)
class DetectedFace:
    """A face found in a photo: box (x, y, w, h), detector confidence, 160x160 crop, embedding,
    `pixels`: the face's width in the pixels the crop was cut from (fewer than the box's
    where the photo was decoded at reduced size; nan: not measured), and `visible`: the
    share of the whole face's box inside the photo (detect.Face.visible)."""

    box: tuple[int, int, int, int]
    score: float
    crop: np.ndarray
    embedding: np.ndarray
    pixels: float = float("nan")
    visible: float = 1.0


@dataclass(frozen=True)
class Identification:
    """Who a face is: nearest person's name (None when the gallery is empty), distance, known,
    and what else the decision rule used (recognition/decision.py): the score d1 / d2,
    `background`, the distance to the nearest background person (inf: the rule used none),
    and `pixels`, the face's width as FaceNet saw it (small faces get the rule's slack);
    `visible` as in DetectedFace (what enrollment from this face would check)."""

    box: tuple[int, int, int, int]
    name: str | None
    distance: float
    known: bool
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)  # the face's, for tracking
    score: float = float("nan")
    background: float = float("inf")
    pixels: float = float("nan")
    visible: float = 1.0

    @property
    def label(self) -> str:
        return self.name if self.known and self.name else "unknown"

    def to_dict(self) -> dict:
        """The report `identify --json` prints per face (numbers rounded; None where there is
        no such number: nobody enrolled, or no background)."""
        def number(value: float) -> float | None:
            return round(float(value), 4) if np.isfinite(value) else None

        return {"box": list(self.box), "name": self.name if self.known else None, "distance": number(self.distance),
                "known": self.known, "score": number(self.score), "background": number(self.background),
                "pixels": number(self.pixels)}


class Recognizer:
    """Loads a detector and FaceNet once; finds, embeds and identifies every face in a photo.

    `model` chooses how faces are compared: None or "facenet" (the default) is the L2
    distance between FaceNet embeddings; the path of a `facebot siamese train` file (.npz)
    compares them with that network instead (its features become the embeddings, its
    distance the metric, its calibrated threshold the default). `embedder` picks FaceNet's
    backend (recognition/embed.py; None: $FACEBOT_EMBEDDER, else int8).
    """

    def __init__(self, detector: str = "mtcnn", max_faces: int = MAX_FACES, model: str | Path | None = None,
                 crop: CropStyle | None = None, embedder: str | None = None):
        self.detector = make_detector(detector)
        self.embedder = Embedder(backend=embedder)
        self.max_faces = max_faces
        self.scorer = load_scorer(model)
        self._crop = crop

    @property
    def crop(self) -> CropStyle:
        """How faces are cut for the networks (recognition/align.py): the one given, else BOX
        for FaceNet and SQUARE for a Siamese network (the crop it was trained on)."""
        if self._crop is not None:
            return self._crop
        return BOX if self.scorer.name == "facenet" else SQUARE

    def with_model(self, model: str | Path | None) -> "Recognizer":
        """A Recognizer sharing this one's loaded detector and FaceNet, comparing faces with `model`."""
        other = copy.copy(self)
        other.scorer = load_scorer(model)
        return other

    @property
    def features_id(self) -> str:
        """What DetectedFace.embedding holds: FaceNet's id with the crop's suffix
        ("facenet-20180408-102900+box"), or a from-scratch network's own (the gallery keeps
        samples of different features apart)."""
        return self.scorer.features_id or self.embedder.features_id + self.crop.features_suffix

    @property
    def dim(self) -> int:
        """Length of DetectedFace.embedding."""
        return self.embedder.dim if self.scorer.reads == "facenet" else self.scorer.net.config.embedding_dim

    @property
    def metric(self) -> Metric | None:
        """The distance Matchers should use: None (plain L2) for FaceNet, else the network's."""
        return None if self.scorer.name == "facenet" else self.scorer.distance

    @property
    def default_threshold(self) -> float:
        """FaceNet's calibrated threshold, or the one stored with the Siamese network."""
        if self.scorer.name == "facenet":
            return DEFAULT_THRESHOLD
        if self.scorer.threshold is None:
            raise ValueError(f"the {self.scorer.name} model has no calibrated threshold; "
                             "run `facebot siamese calibrate` on it or pass --threshold")
        return float(self.scorer.threshold)

    def matcher(self, labels: list[str], embeddings: np.ndarray) -> Matcher:
        """A Matcher over enrolled samples made by this recognizer, with its metric."""
        embeddings = embeddings if len(labels) else np.zeros((0, self.dim), np.float32)
        return Matcher(labels, embeddings, metric=self.metric)

    def warm_up(self) -> None:
        """Run each network once so the first real photo is not slowed by graph set-up."""
        self.detector.detect(np.full((240, 320, 3), 127, np.uint8))
        self._embed(np.zeros((1, 160, 160, 3), np.uint8))

    def _embed(self, crops: np.ndarray) -> np.ndarray:
        if self.scorer.reads == "crop":  # a from-scratch network reads the crops itself
            return self.scorer.features(crops)
        return self.scorer.features(self.embedder.embed(crops))

    def faces(self, photo: np.ndarray | Photo) -> list[DetectedFace]:
        """Return every face in a photo with its embedding, biggest first.

        `photo` is an RGB array, or a Photo from decode_photo, maybe decoded at a reduced
        size: boxes are in the photo's own pixels either way, crops are cut from the pixels
        decoded (those of faces under SHARP_FACE px there from the photo decoded again with
        less reduction), all embedded in one batch. Raises TooManyFaces when there are more
        than `max_faces`.
        """
        photo = photo if isinstance(photo, Photo) else Photo.full(photo)
        found = self.detector.detect(photo.rgb)
        if len(found) > self.max_faces:
            raise TooManyFaces(f"{len(found)} faces found; at most {self.max_faces} per photo")
        # A face too small in a photo decoded at reduced size is cut from the photo decoded
        # again with less reduction (found in the small pixels, named from the sharp ones).
        sharp, k = photo.sharper(min((f.whole_box[2] for f in found), default=np.inf), SHARP_FACE)
        crops, widths = [], []
        for f in found:
            source, m = (sharp, k) if f.whole_box[2] < SHARP_FACE else (photo.rgb, 1.0)
            # the whole face's box (reaching outside the photo where its edge cuts the face),
            # turned upright where the face was found lying on its side
            box = f.whole_box if m == 1.0 else tuple(v * m for v in f.whole_box)
            crops.append(crop_face(source, box, style=self.crop, angle=f.angle))
            widths.append(float(f.whole_box[2] * m))
        del sharp
        crops = np.stack(crops) if crops else np.zeros((0, 160, 160, 3), np.uint8)
        embeddings = self._embed(crops)
        return [DetectedFace(_in_photo(f.box, photo), f.score, c, e, w, f.visible)
                for f, c, e, w in zip(found, crops, embeddings, widths)]

    def identify(self, rgb: np.ndarray, matcher: Matcher, rule: DecisionRule | float | None = None) -> list[Identification]:
        """Return one Identification per face in the photo (nearest person or unknown).

        `rule` decides who is known: a DecisionRule, a float (a plain distance threshold),
        or None for the default (DEFAULT_RULE with FaceNet). A Siamese metric keeps a plain
        threshold: its distances are on another scale, so a rule with a band (fitted on
        FaceNet distances) is replaced by the network's default_threshold.
        """
        faces = self.faces(rgb)
        if not faces:
            return []
        fallback = DEFAULT_RULE if self.metric is None else DecisionRule.from_threshold(self.default_threshold)
        rule = as_rule(rule, fallback)
        if self.metric is not None and not rule.is_threshold:
            rule = fallback
        matches = matcher.nearest(np.stack([f.embedding for f in faces]), rule, widths=[f.pixels for f in faces])
        return [Identification(f.box, m.name, m.distance, m.known, f.embedding, m.score, m.background, f.pixels,
                               f.visible)
                for f, m in zip(faces, matches)]
