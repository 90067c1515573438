"""Score pairs of faces with a trained Siamese network (or plain FaceNet distance), so the
networks can serve identification as well as the evaluation.

Every scorer has the same face: `features(x)` turns what it reads (160x160 uint8 crops,
or FaceNet embeddings for the FaceNet-based kinds) into features once, then
`similarity(a, b)` / `distance(a, b)` compare feature matrices, larger similarity meaning
more alike. FaceNet L2 distance remains the product's default: on people never seen in
training no Siamese network here beats it (README, "Siamese networks").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from facebot.models.siamese.data import center_crop, resize_crops
from facebot.models.siamese.networks import SiameseNet
from facebot.models.siamese.store import load_net


class FaceNetScorer:
    """Plain FaceNet: features are the embeddings; distance is L2, similarity its negation."""

    name = "facenet"
    reads = "facenet"
    features_id = None  # what its features are, when they are not the FaceNet embeddings themselves
    threshold = None  # a distance threshold calibrated for this scorer, when it has one

    def features(self, x: np.ndarray) -> np.ndarray:
        """FaceNet embeddings (N, 512) in, the same out (float32)."""
        return np.asarray(x, np.float32)

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(M, N) L2 distances between feature rows of a and b."""
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        sq = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2 * a @ b.T
        return np.sqrt(np.maximum(sq, 0.0))

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return -self.distance(a, b)


class SiameseScorer(FaceNetScorer):
    """A trained SiameseNet. `reads` is "crop" (160x160 uint8 RGB MTCNN crops) for the
    from-scratch kinds and "facenet" (512-d embeddings) for facenet-head.

    With a head, similarity is the same-person probability and distance 1 - probability;
    without one (triplet), distance is the L2 distance of the unit-length features.
    """

    def __init__(self, net: SiameseNet, meta: dict | None = None):
        self.net = net
        self.meta = meta or {}
        self.name = net.config.kind
        self.reads = "crop" if net.config.uses_crops else "facenet"
        # facenet-head compares FaceNet embeddings, so it shares the gallery's FaceNet
        # samples; a from-scratch network's features are its own and need their own samples.
        self.features_id = f"siamese-{self.name}-{self.meta.get('digest', 'untracked')}" if net.config.uses_crops else None
        self.threshold = self.meta.get("threshold", {}).get("value")

    def features(self, x: np.ndarray, batch: int = 128) -> np.ndarray:
        """Encoder features for crops (N, S, S, 3) uint8 or FaceNet embeddings (N, 512)."""
        config = self.net.config
        x = np.asarray(x)
        if config.uses_crops:
            if x.ndim != 4 or x.shape[-1] != 3:
                raise ValueError(f"{self.name} reads RGB crops (N, S, S, 3), got {x.shape}")
            x = center_crop(resize_crops(x.astype(np.uint8), config.crop_size), config.input_size)
        elif x.ndim != 2 or x.shape[1] != config.embedding_dim:
            raise ValueError(f"{self.name} reads FaceNet embeddings (N, {config.embedding_dim}), got {x.shape}")
        x = x.astype(np.float32)
        if not len(x):
            return np.zeros((0, config.embedding_dim), np.float32)
        return np.concatenate([np.asarray(self.net.encode(x[k:k + batch])) for k in range(0, len(x), batch)])

    def similarity(self, a: np.ndarray, b: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """(M, N) similarity between every feature row of a and of b."""
        if self.net.head is None:
            return -self.distance(a, b)
        a, b = np.atleast_2d(a).astype(np.float32), np.atleast_2d(b).astype(np.float32)
        i, j = np.divmod(np.arange(len(a) * len(b)), len(b))
        out = np.concatenate([np.asarray(self.net.same_probability(a[i[k:k + chunk]], b[j[k:k + chunk]]))
                              for k in range(0, len(i), chunk)]) if len(i) else np.zeros(0, np.float32)
        return out.reshape(len(a), len(b))

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(M, N) distances: 1 - same-person probability with a head, else L2."""
        return 1.0 - self.similarity(a, b) if self.net.head is not None else super().distance(a, b)


def load_scorer(path: str | Path | None) -> FaceNetScorer:
    """The scorer saved at PATH (a `facebot siamese train` .npz), or plain FaceNet for
    None / "facenet"."""
    if path is None or str(path) == "facenet":
        return FaceNetScorer()
    net, meta = load_net(path)
    return SiameseScorer(net, meta)
