"""Nearest-person search over enrolled embeddings, held as one in-memory matrix."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from facebot.recognition.decision import DEFAULT_RULE, Cohort, DecisionRule, PersonCodes, as_rule, default_cohort

# A distance between feature rows: (queries (M, D), samples (N, D)) -> (M, N), smaller = more alike.
Metric = Callable[[np.ndarray, np.ndarray], np.ndarray]

# The L2 distance between unit FaceNet embeddings above which two faces are called
# different people. Calibrated on the Georgia Tech faces (README, "Threshold"): 0.75 is
# where 0.01% of impostor image pairs fall closer, so a stranger shown to a gallery of
# 50-100 people is falsely accepted about 0.5-1% of the time. FaceNet matching now uses
# DEFAULT_RULE (recognition/decision.py); this plain threshold remains the one a float
# means, and the fallback of matchers with another metric.
DEFAULT_THRESHOLD = 0.75


@dataclass(frozen=True)
class Match:
    """The nearest enrolled person for one face: name, distance, the rule's score (d1 / d2,
    see recognition/decision.py), whether the rule calls the face that person, and the
    distance to the nearest background person (inf when the rule used no background)."""

    name: str | None
    distance: float
    known: bool
    score: float = float("nan")
    background: float = float("inf")


class Matcher:
    """All enrolled samples as an (N, D) float32 matrix with one label per row.

    Squared L2 distance between unit vectors is 2 - 2·cos, so one matrix product scores a
    face against every sample; 100,000 samples take a few milliseconds. A `metric` (for
    example a trained Siamese network's, see Recognizer.metric) replaces the L2 distance.

    `cohort` is the background a rule with cohort_ratio > 0 checks faces against
    (recognition/decision.py): "default" is the shipped one (read on first use) for FaceNet
    L2 matching of embeddings of its size, and none otherwise (another metric, other
    features: the rule then decides without a background); None is none; a Cohort is that one.
    """

    def __init__(self, labels: list[str], embeddings: np.ndarray, metric: Metric | None = None,
                 cohort: Cohort | str | None = "default"):
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(labels) != len(embeddings):
            raise ValueError("labels and embeddings must have the same length")
        if isinstance(cohort, str) and cohort != "default":
            raise ValueError(f"cohort must be 'default', None or a Cohort, got {cohort!r}")
        if isinstance(cohort, Cohort) and len(embeddings) and cohort.dim != embeddings.shape[1]:
            raise ValueError(f"the cohort has {cohort.dim} dims, the embeddings {embeddings.shape[1]}")
        self.labels = list(labels)
        self.matrix = np.ascontiguousarray(embeddings)
        self._sq_norms = np.sum(self.matrix**2, axis=1)
        self.metric = metric
        self._codes = PersonCodes.of(self.labels)
        self._cohort = cohort

    def background(self, queries: np.ndarray) -> np.ndarray | None:
        """(M,) distance from each query to its nearest background person, or None when this
        matcher has no background (see `cohort` above)."""
        cohort = self._cohort
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if isinstance(cohort, str):  # "default": the shipped cohort, for FaceNet L2 only
            if self.metric is not None:
                return None
            cohort = default_cohort()
            if cohort.dim != queries.shape[1]:
                return None
        if cohort is None:
            return None
        return cohort.nearest(queries)

    def __len__(self) -> int:
        return len(self.labels)

    def distances(self, queries: np.ndarray) -> np.ndarray:
        """Return the (M, N) distances (L2 unless a metric was given) from each query embedding to each enrolled sample."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if self.metric is not None:
            return np.asarray(self.metric(queries, self.matrix), dtype=np.float32)
        sq = np.sum(queries**2, axis=1)[:, None] + self._sq_norms[None, :] - 2.0 * queries @ self.matrix.T
        return np.sqrt(np.maximum(sq, 0.0))

    def default_rule(self) -> DecisionRule:
        """DEFAULT_RULE for FaceNet's L2 distance; DEFAULT_THRESHOLD alone for another metric
        (its scale differs, and the rule was fitted on FaceNet distances)."""
        return DEFAULT_RULE if self.metric is None else DecisionRule.from_threshold(DEFAULT_THRESHOLD)

    def nearest(self, queries: np.ndarray, rule: DecisionRule | float | None = None, exclude: str | None = None,
                *, threshold: float | None = None, widths: "np.ndarray | list[float] | None" = None) -> list[Match]:
        """Return the nearest enrolled person for each query embedding, known or not by `rule`.

        A rule with a background test (DEFAULT_RULE's) also measures each query against this
        matcher's cohort. `rule` is a DecisionRule, a float (a plain distance threshold, as before the rule
        existed; `threshold=` is the same), or None for default_rule(). A face the rule
        refuses still reports its nearest person and distance, with known=False. `exclude`
        skips one person (used to look for conflicts). `widths`: each query's face width in
        px (DetectedFace.pixels), for the rule's small-face slack; None: unknown, no slack.
        """
        rule = as_rule(threshold if rule is None else rule, self.default_rule())
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        rows = [i for i, label in enumerate(self.labels) if label != exclude] if exclude else None
        if len(self) == 0 or rows == []:
            return [Match(None, float("inf"), False, float("inf")) for _ in range(len(queries))]
        dist = self.distances(queries)
        codes = self._codes
        if rows is not None:
            dist = dist[:, rows]
            codes = PersonCodes.of([self.labels[i] for i in rows])
        background = self.background(queries) if rule.uses_cohort else None
        decided = rule.decide(dist, codes, background, widths)
        far = np.full(len(queries), np.inf) if background is None else background
        return [Match(name, float(d), bool(k), float(s), float(b))
                for name, d, s, k, b in zip(decided.names, decided.distance, decided.score, decided.known, far)]
