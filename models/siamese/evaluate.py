"""Score a model on given N-way one-shot trials and over all pairs (ROC), from one
similarity matrix per model, so every model is measured on exactly the same draws.

The trials themselves come from `recognition.evaluate.n_way_trials` (the caller passes
them in: `models` does not import `recognition`).
"""
from __future__ import annotations

import numpy as np


def similarity_matrix(scorer, inputs: np.ndarray) -> np.ndarray:
    """(N, N) similarity of every row of `inputs` (crops or embeddings, as the scorer reads)
    with every other; features are computed once."""
    features = scorer.features(inputs)
    return np.asarray(scorer.similarity(features, features), np.float64)


def n_way_accuracy(similarity: np.ndarray, trials: list[tuple[int, list[int]]]) -> float:
    """Fraction of trials (probe row, support rows with the true match first) where the
    probe is most similar to its true match.

    Ties at the top (a saturated sigmoid can give several supports probability 1.0) earn
    1/k for k tied candidates, not a full point: taking the first would favour the true
    match, which is always listed first.
    """
    if not trials:
        return float("nan")
    credit = 0.0
    for probe, support in trials:
        scores = similarity[probe, support]
        top = np.flatnonzero(scores == scores.max())
        credit += (1.0 / len(top)) if top[0] == 0 else 0.0
    return credit / len(trials)


def pair_scores(similarity: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) similarities over all unordered pairs of distinct rows."""
    i, j = np.triu_indices(len(labels), k=1)
    same = labels[i] == labels[j]
    s = similarity[i, j]
    return s[same], s[~same]


def roc_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """False- and true-accept rates as the similarity threshold falls, and the area under
    the curve (the chance that a random genuine pair outscores a random impostor pair)."""
    scores = np.concatenate([genuine, impostor])
    is_genuine = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    order = np.argsort(-scores, kind="stable")
    scores, is_genuine = scores[order], is_genuine[order]
    # one point per distinct threshold, so tied scores do not draw a staircase
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tpr = np.r_[0.0, np.cumsum(is_genuine)[last] / max(len(genuine), 1)]
    fpr = np.r_[0.0, np.cumsum(1 - is_genuine)[last] / max(len(impostor), 1)]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def calibrate(scorer, inputs: np.ndarray, labels: np.ndarray, false_accept_rate: float = 1e-3) -> dict:
    """The distance threshold at which `false_accept_rate` of impostor pairs among `inputs`
    (people the network did not train on) would be accepted, as a dict stored with the
    model: {"value", "false_accept_rate", "true_accept_rate", "pairs"}.

    Identification needs a threshold in the network's own units (1 - probability, or L2
    between its features); this is the same rule as FaceNet's calibration, on fewer pairs.
    """
    features = scorer.features(inputs)
    genuine, impostor = pair_scores(np.asarray(scorer.distance(features, features), np.float64), labels)
    if not len(genuine) or not len(impostor):
        raise ValueError("calibration needs at least two people with two photos each")
    value = float(np.quantile(impostor, false_accept_rate))
    return {"value": round(value, 4), "false_accept_rate": float(np.mean(impostor <= value)),
            "true_accept_rate": float(np.mean(genuine <= value)), "pairs": [len(genuine), len(impostor)]}
