"""Detect -> crop -> embed -> match, with the models loaded once."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from recognition.align import crop_face
from recognition.detect import make_detector
from recognition.embed import Embedder
from recognition.match import DEFAULT_THRESHOLD, Matcher

log = logging.getLogger(__name__)

MAX_FACES = 30


class TooManyFaces(ValueError):
    """More faces than the sane cap: a crowd photo or a detector gone wrong."""


@dataclass(frozen=True)
class DetectedFace:
    """A face found in a photo: box (x, y, w, h), detector confidence, 160x160 crop, embedding."""

    box: tuple[int, int, int, int]
    score: float
    crop: np.ndarray
    embedding: np.ndarray


@dataclass(frozen=True)
class Identification:
    """Who a face is: nearest person's name (None when the gallery is empty), distance, known."""

    box: tuple[int, int, int, int]
    name: str | None
    distance: float
    known: bool

    @property
    def label(self) -> str:
        return self.name if self.known and self.name else "unknown"

    def to_dict(self) -> dict:
        distance = self.distance if np.isfinite(self.distance) else None
        return {"box": list(self.box), "name": self.name if self.known else None,
                "distance": None if distance is None else round(distance, 4), "known": self.known}


class Recognizer:
    """Loads a detector and FaceNet once; finds, embeds and identifies every face in a photo."""

    def __init__(self, detector: str = "mtcnn", max_faces: int = MAX_FACES):
        self.detector = make_detector(detector)
        self.embedder = Embedder()
        self.max_faces = max_faces

    def warm_up(self) -> None:
        """Run each network once so the first real photo is not slowed by graph set-up."""
        self.detector.detect(np.full((240, 320, 3), 127, np.uint8))
        self.embedder.embed(np.zeros((1, 160, 160, 3), np.uint8))

    def faces(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Return every face in an RGB photo with its embedding, biggest first.

        Raises TooManyFaces when there are more than `max_faces`.
        """
        found = self.detector.detect(rgb)
        if len(found) > self.max_faces:
            raise TooManyFaces(f"{len(found)} faces found; at most {self.max_faces} per photo")
        crops = np.stack([crop_face(rgb, f.box) for f in found]) if found else np.zeros((0, 160, 160, 3), np.uint8)
        embeddings = self.embedder.embed(crops)
        return [DetectedFace(f.box, f.score, c, e) for f, c, e in zip(found, crops, embeddings)]

    def identify(self, rgb: np.ndarray, matcher: Matcher, threshold: float = DEFAULT_THRESHOLD) -> list[Identification]:
        """Return one Identification per face in the photo (nearest person or unknown)."""
        faces = self.faces(rgb)
        if not faces:
            return []
        matches = matcher.nearest(np.stack([f.embedding for f in faces]), threshold)
        return [Identification(f.box, m.name, m.distance, m.known) for f, m in zip(faces, matches)]
