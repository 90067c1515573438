"""Measure recognition on any DIR/IDENTITY/*.jpg tree: one-shot, N-way, open set, threshold;
and choose a decision rule (recognition/decision.py) on labelled trees.

Every image is embedded once (biggest face); all protocols then work on that matrix with
fixed seeds, so a run is repeatable and fast.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from facebot.recognition.decision import DecisionRule, as_rule, nearest_people, ratio_score
from facebot.recognition.images import ImageError, load_image
from facebot.recognition.match import Matcher, Metric

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}

# N-way one-shot columns, each reported only for sets with at least N identities.
N_WAYS = (20, 10, 4)

# The grid calibrate_rule searches (FaceNet L2 distances between unit vectors, 0..2).
CALIBRATION_LOWS = tuple(np.round(np.arange(0.30, 0.901, 0.02), 2))
CALIBRATION_HIGHS = tuple(np.round(np.arange(0.60, 1.301, 0.01), 2))
CALIBRATION_RATIOS = tuple(np.round(np.arange(0.60, 1.001, 0.01), 2))


@dataclass
class EmbeddedSet:
    """Embeddings of a labelled image tree: one row per image whose face was found."""

    identities: list[str]
    labels: np.ndarray  # int index into identities, one per row
    embeddings: np.ndarray  # (rows, D)
    paths: list[str]
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    metric: Metric | None = None  # how rows are compared (None: L2 distance)

    def matcher(self, labels: list[str], rows) -> Matcher:
        """A Matcher over some rows of this set, with the set's metric."""
        return Matcher(labels, self.embeddings[rows], metric=self.metric)

    @property
    def images(self) -> int:
        return len(self.paths) + len(self.failures)


def list_tree(root: str | Path) -> list[tuple[str, Path]]:
    """Return (identity, image path) for every image in ROOT/IDENTITY/, in a stable order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    items = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        for image in sorted(person.iterdir(), key=lambda p: (len(p.stem), p.name)):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                items.append((person.name, image))
    return items


def embed_tree(root: str | Path, recognizer, progress: Callable[[Iterable], Iterable] = lambda x: x) -> EmbeddedSet:
    """Embed the biggest face of every image under ROOT/IDENTITY/; record failures with reasons."""
    items = list_tree(root)
    identities = sorted({name for name, _ in items})
    index = {name: i for i, name in enumerate(identities)}
    labels, rows, paths, failures = [], [], [], []
    for name, path in progress(items):
        try:
            faces = recognizer.faces(load_image(path))
        except (ImageError, ValueError) as exc:
            failures.append((str(path), str(exc)))
            continue
        if not faces:
            failures.append((str(path), "no face found"))
            continue
        labels.append(index[name])
        rows.append(faces[0].embedding)
        paths.append(str(path))
    emb = np.stack(rows).astype(np.float32) if rows else np.zeros((0, recognizer.dim), np.float32)
    return EmbeddedSet(identities, np.asarray(labels, dtype=int), emb, paths, failures, recognizer.metric)


def _by_identity(labels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}


def one_shot_rank1(data: EmbeddedSet, repeats: int = 10, seed: int = 0) -> float:
    """Enroll one random image per identity, identify all the others among every identity.

    Returns the fraction of probes whose nearest enrolled image is the right person,
    averaged over `repeats` random draws. Identities with a single image are skipped.
    """
    rng = np.random.default_rng(seed)
    groups = {c: rows for c, rows in _by_identity(data.labels).items() if len(rows) >= 2}
    scores = []
    for _ in range(repeats):
        enrolled = {c: rng.choice(rows) for c, rows in groups.items()}
        classes = list(enrolled)
        probes = [r for c, rows in groups.items() for r in rows if r != enrolled[c]]
        dist = data.matcher([str(c) for c in classes], [enrolled[c] for c in classes]).distances(data.embeddings[probes])
        predicted = np.asarray(classes)[np.argmin(dist, axis=1)]
        scores.append(float(np.mean(predicted == data.labels[probes])))
    return float(np.mean(scores)) if scores else float("nan")


def n_way_trials(labels: np.ndarray, n: int, trials: int, seed: int) -> list[tuple[int, list[int]]]:
    """Draw N-way one-shot trials: (probe row, support rows) with the true match first.

    Each trial picks N identities; the first gives a probe and a different image of the
    same person, the others one image each. Shared by the FaceNet and Siamese evaluations
    so both are scored on exactly the same trials.
    """
    rng = np.random.default_rng(seed)
    groups = {c: rows for c, rows in _by_identity(labels).items() if len(rows) >= 1}
    multi = [c for c, rows in groups.items() if len(rows) >= 2]
    n = min(n, len(groups))
    out = []
    for _ in range(trials):
        target = multi[rng.integers(len(multi))]
        others = rng.choice([c for c in groups if c != target], size=n - 1, replace=False)
        probe, positive = rng.choice(groups[target], size=2, replace=False)
        support = [int(positive)] + [int(rng.choice(groups[int(c)])) for c in others]
        out.append((int(probe), support))
    return out


def n_way_accuracy(data: EmbeddedSet, n: int, trials: int = 1000, seed: int = 0) -> float:
    """Fraction of N-way one-shot trials where the probe is nearest to its own person."""
    hits = 0
    draws = n_way_trials(data.labels, n, trials, seed)
    for probe, support in draws:
        d = data.matcher(["x"] * len(support), support).distances(data.embeddings[probe])[0]
        hits += int(np.argmin(d) == 0)
    return hits / len(draws) if draws else float("nan")


def pair_distances(data: EmbeddedSet) -> tuple[np.ndarray, np.ndarray]:
    """Return (genuine, impostor) distances over all pairs of images."""
    dist = data.matcher(["x"] * len(data.labels), slice(None)).distances(data.embeddings)
    same = data.labels[:, None] == data.labels[None, :]
    upper = np.triu(np.ones_like(same, dtype=bool), k=1)
    return dist[same & upper], dist[~same & upper]


def calibrate_threshold(data: EmbeddedSet, false_accept_rate: float = 1e-4) -> float:
    """The distance below which only `false_accept_rate` of impostor pairs fall."""
    _, impostor = pair_distances(data)
    return float(np.quantile(impostor, false_accept_rate))


@dataclass
class OpenSetDraws:
    """Every probe of every open-set draw, with what a decision rule needs to judge it.

    FAR and TAR are weighted sums: `weight` is 1 / (probes of the same kind in the same
    draw) / draws, so each draw counts equally, as when its rates are averaged.
    """

    nearest: np.ndarray  # distance to the nearest enrolled person (d1)
    second: np.ndarray  # distance to the next enrolled person (d2; inf with one person)
    correct: np.ndarray  # the nearest person is the probe's own (always False for strangers)
    genuine: np.ndarray  # True: an enrolled person's other image; False: a stranger's image
    weight: np.ndarray

    @property
    def score(self) -> np.ndarray:
        """The rule's score d1 / d2 for every probe."""
        return ratio_score(self.nearest, self.second)

    def rates(self, rule: DecisionRule) -> dict:
        """{"false_accept_rate", "true_accept_rate"} of the rule over these draws."""
        known = rule.accepts(self.nearest, self.score)
        return {"false_accept_rate": float(np.sum(self.weight[~self.genuine] * known[~self.genuine])),
                "true_accept_rate": float(np.sum(self.weight[self.genuine] * (known & self.correct)[self.genuine]))}


def open_set_draws(data: EmbeddedSet, stranger_fraction: float = 0.3, repeats: int = 10, seed: int = 0) -> OpenSetDraws:
    """Hold out some identities as strangers; enroll one random image for each of the others.

    Each of the `repeats` seeded draws probes with every other image of the enrolled people
    and every image of the strangers; the nearest people come from the same search the
    product runs (decision.nearest_people over the Matcher's distances).
    """
    rng = np.random.default_rng(seed)
    groups = _by_identity(data.labels)
    classes = np.asarray(sorted(groups))
    parts = []
    for _ in range(repeats):
        shuffled = rng.permutation(classes)
        n_strangers = max(1, int(round(len(classes) * stranger_fraction)))
        strangers, members = shuffled[:n_strangers], shuffled[n_strangers:]
        enrolled = {int(c): int(rng.choice(groups[int(c)])) for c in members}
        labels = [str(c) for c in enrolled]
        matcher = data.matcher(labels, list(enrolled.values()))
        genuine = [r for c in enrolled for r in groups[c] if r != enrolled[c]]
        impostor = [r for c in strangers for r in groups[int(c)]]
        for rows, is_genuine in ((genuine, True), (impostor, False)):
            if not rows:
                continue
            people = nearest_people(matcher.distances(data.embeddings[rows]), labels)
            names = np.asarray([int(n) for n in people.names])
            parts.append((people.distance, people.second, is_genuine & (names == data.labels[rows]),
                          np.full(len(rows), is_genuine), np.full(len(rows), 1.0 / len(rows) / repeats)))
    if not parts:
        empty = np.zeros(0)
        return OpenSetDraws(empty, empty, empty.astype(bool), empty.astype(bool), empty)
    return OpenSetDraws(*(np.concatenate(column) for column in zip(*parts)))


def open_set(data: EmbeddedSet, rule: DecisionRule | float, stranger_fraction: float = 0.3, repeats: int = 10,
             seed: int = 0) -> dict:
    """Open-set rates of a decision rule (or a plain distance threshold) over seeded draws.

    Returns {"false_accept_rate": strangers' images accepted as anyone,
    "true_accept_rate": enrolled people's other images given their own name}.
    """
    return open_set_draws(data, stranger_fraction, repeats, seed).rates(as_rule(rule))


def calibrate_rule(datasets: list[EmbeddedSet], far: float = 0.005, stranger_fraction: float = 0.3, repeats: int = 10,
                   seed: int = 0, lows=CALIBRATION_LOWS, highs=CALIBRATION_HIGHS,
                   ratios=CALIBRATION_RATIOS) -> tuple[DecisionRule, list[dict]]:
    """Choose the rule that keeps the open-set FAR <= `far` on every set while maximising
    the worst TAR across sets; returns it with each set's expected rates (same draws).

    Every (low, high >= low, ratio) of the grid is scored on the open-set draws of each
    set. Ties go to the lowest worst FAR, then the best mean TAR, then the most cautious
    rule (smallest high, ratio, low). The figures are in-sample: judge the rule on sets it
    was not chosen on. Raises ValueError for sets compared by another metric than FaceNet's
    L2 distance, sets with fewer than two identities, or when no rule meets `far`.
    """
    if not datasets:
        raise ValueError("no data set to calibrate on")
    for data in datasets:
        if data.metric is not None:
            raise ValueError("calibrate_rule fits FaceNet L2 distances; a Siamese model keeps its threshold")
        if len(set(data.labels.tolist())) < 2:
            raise ValueError("each data set needs at least two identities with faces")
    draws = [open_set_draws(d, stranger_fraction, repeats, seed) for d in datasets]
    grid_far, grid_tar = zip(*(_grid_rates(d, lows, highs, ratios) for d in draws))  # each (L, H, R)
    worst_far, worst_tar, mean_tar = np.max(grid_far, axis=0), np.min(grid_tar, axis=0), np.mean(grid_tar, axis=0)
    low_grid, high_grid, ratio_grid = np.meshgrid(lows, highs, ratios, indexing="ij")
    valid = (high_grid >= low_grid) & (worst_far <= far + 1e-12)
    if not valid.any():
        raise ValueError(f"no rule of the grid keeps the false-accept rate at or below {far:.2%} on every set")
    # np.lexsort sorts by the last key first: worst TAR (desc), worst FAR, mean TAR (desc), high, ratio, low.
    keys = [k[valid] for k in (low_grid, ratio_grid, high_grid, -mean_tar, worst_far, -worst_tar)]
    best = int(np.lexsort(keys)[0])
    rule = DecisionRule(float(low_grid[valid][best]), float(high_grid[valid][best]), float(ratio_grid[valid][best]))
    return rule, [d.rates(rule) for d in draws]


def _grid_rates(draws: OpenSetDraws, lows, highs, ratios) -> tuple[np.ndarray, np.ndarray]:
    """FAR and TAR of every (low, high, ratio) rule over the draws, as (L, H, R) arrays."""
    lows, highs, ratios = (np.asarray(v, dtype=np.float64) for v in (lows, highs, ratios))
    in_ratio = draws.score[None, :] <= ratios[:, None]  # (R, probes)
    impostor, genuine = ~draws.genuine, draws.genuine
    w_far = draws.weight * impostor
    w_tar = draws.weight * (genuine & draws.correct)
    far = np.zeros((len(lows), len(highs), len(ratios)))
    tar = np.zeros_like(far)
    for i, low in enumerate(lows):
        below = draws.nearest <= low
        for j, high in enumerate(highs):
            known = below[None, :] | ((draws.nearest <= high)[None, :] & in_ratio)
            far[i, j] = known @ w_far
            tar[i, j] = known @ w_tar
    return far, tar


def evaluate(data: EmbeddedSet, rule: DecisionRule | float, seed: int = 0, trials: int = 1000, repeats: int = 10) -> dict:
    """Run every protocol and return the report dictionary (fractions, not percentages).

    `rule` is a DecisionRule or a plain distance threshold. "threshold" is the largest
    distance the rule ever accepts (its `high`): with one enrolled person the rule is that
    threshold, so the image-pair rates there are what a one-person gallery would see.
    N-way columns appear only for N <= the number of identities.
    """
    rule = as_rule(rule)
    threshold = rule.high
    genuine, impostor = pair_distances(data)
    report = {
        "identities": len(data.identities),
        "images": data.images,
        "rank1": one_shot_rank1(data, repeats=repeats, seed=seed),
        "n_way": {str(n): n_way_accuracy(data, n, trials=trials, seed=seed + n) for n in N_WAYS if n <= len(data.identities)},
        "threshold": threshold,
        "rule": rule.to_dict(),
        **open_set(data, rule, repeats=repeats, seed=seed),
        "pair_false_accept_rate": float(np.mean(impostor <= threshold)) if len(impostor) else float("nan"),
        "pair_true_accept_rate": float(np.mean(genuine <= threshold)) if len(genuine) else float("nan"),
        "calibrated_threshold": calibrate_threshold(data) if len(impostor) else float("nan"),
        "detection_failures": len(data.failures),
        "trials": trials,
        "repeats": repeats,
        "seed": seed,
    }
    return report
