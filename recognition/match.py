"""Nearest-person search over enrolled embeddings, held as one in-memory matrix."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# A distance between feature rows: (queries (M, D), samples (N, D)) -> (M, N), smaller = more alike.
Metric = Callable[[np.ndarray, np.ndarray], np.ndarray]

# The L2 distance between unit FaceNet embeddings above which two faces are called
# different people. Calibrated on the Georgia Tech faces (README, "Threshold"): 0.75 is
# where 0.01% of impostor image pairs fall closer, so a stranger shown to a gallery of
# 50-100 people is falsely accepted about 0.5-1% of the time.
DEFAULT_THRESHOLD = 0.75


@dataclass(frozen=True)
class Match:
    """The nearest enrolled person for one face: name, L2 distance, and whether it is within the threshold."""

    name: str | None
    distance: float
    known: bool


class Matcher:
    """All enrolled samples as an (N, D) float32 matrix with one label per row.

    Squared L2 distance between unit vectors is 2 - 2·cos, so one matrix product scores a
    face against every sample; 100,000 samples take a few milliseconds. A `metric` (for
    example a trained Siamese network's, see Recognizer.metric) replaces the L2 distance.
    """

    def __init__(self, labels: list[str], embeddings: np.ndarray, metric: Metric | None = None):
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(labels) != len(embeddings):
            raise ValueError("labels and embeddings must have the same length")
        self.labels = list(labels)
        self.matrix = np.ascontiguousarray(embeddings)
        self._sq_norms = np.sum(self.matrix**2, axis=1)
        self.metric = metric

    def __len__(self) -> int:
        return len(self.labels)

    def distances(self, queries: np.ndarray) -> np.ndarray:
        """Return the (M, N) distances (L2 unless a metric was given) from each query embedding to each enrolled sample."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if self.metric is not None:
            return np.asarray(self.metric(queries, self.matrix), dtype=np.float32)
        sq = np.sum(queries**2, axis=1)[:, None] + self._sq_norms[None, :] - 2.0 * queries @ self.matrix.T
        return np.sqrt(np.maximum(sq, 0.0))

    def nearest(self, queries: np.ndarray, threshold: float = DEFAULT_THRESHOLD, exclude: str | None = None) -> list[Match]:
        """Return the nearest enrolled person for each query embedding.

        A face farther than `threshold` from everyone still reports its nearest person and
        distance, with known=False. `exclude` skips one person (used to look for conflicts).
        """
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        rows = [i for i, label in enumerate(self.labels) if label != exclude] if exclude else None
        if len(self) == 0 or rows == []:
            return [Match(None, float("inf"), False) for _ in range(len(queries))]
        dist = self.distances(queries)
        if rows is not None:
            dist = dist[:, rows]
        best = np.argmin(dist, axis=1)
        out = []
        for q, col in enumerate(best):
            label = self.labels[rows[col] if rows is not None else col]
            d = float(dist[q, col])
            out.append(Match(label, d, d <= threshold))
        return out
