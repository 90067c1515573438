"""Measure recognition on any DIR/IDENTITY/*.jpg tree: one-shot, N-way, open set, threshold.

Every image is embedded once (biggest face); all protocols then work on that matrix with
fixed seeds, so a run is repeatable and fast.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from facebot.recognition.images import ImageError, load_image
from facebot.recognition.match import Matcher, Metric

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


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


def open_set(data: EmbeddedSet, threshold: float, stranger_fraction: float = 0.3, repeats: int = 10, seed: int = 0) -> dict:
    """Hold out some identities as strangers; enroll one image for each of the others.

    Returns {"false_accept_rate": strangers' images accepted as anyone,
    "true_accept_rate": enrolled people's other images given their own name}.
    """
    rng = np.random.default_rng(seed)
    groups = _by_identity(data.labels)
    classes = np.asarray(sorted(groups))
    far, tar = [], []
    for _ in range(repeats):
        shuffled = rng.permutation(classes)
        n_strangers = max(1, int(round(len(classes) * stranger_fraction)))
        strangers, members = shuffled[:n_strangers], shuffled[n_strangers:]
        enrolled = {int(c): int(rng.choice(groups[int(c)])) for c in members}
        matcher = data.matcher([str(c) for c in enrolled], list(enrolled.values()))
        genuine = [r for c in enrolled for r in groups[c] if r != enrolled[c]]
        impostor = [r for c in strangers for r in groups[int(c)]]
        g = matcher.nearest(data.embeddings[genuine], threshold)
        tar.append(np.mean([m.known and int(m.name) == data.labels[r] for m, r in zip(g, genuine)]))
        far.append(np.mean([m.known for m in matcher.nearest(data.embeddings[impostor], threshold)]))
    return {"false_accept_rate": float(np.mean(far)), "true_accept_rate": float(np.mean(tar))}


def evaluate(data: EmbeddedSet, threshold: float, seed: int = 0, trials: int = 1000, repeats: int = 10) -> dict:
    """Run every protocol and return the report dictionary (fractions, not percentages)."""
    genuine, impostor = pair_distances(data)
    report = {
        "identities": len(data.identities),
        "images": data.images,
        "rank1": one_shot_rank1(data, repeats=repeats, seed=seed),
        "n_way": {str(n): n_way_accuracy(data, n, trials=trials, seed=seed + n) for n in (20, 10, 4)},
        "threshold": threshold,
        **open_set(data, threshold, repeats=repeats, seed=seed),
        "pair_false_accept_rate": float(np.mean(impostor <= threshold)) if len(impostor) else float("nan"),
        "pair_true_accept_rate": float(np.mean(genuine <= threshold)) if len(genuine) else float("nan"),
        "calibrated_threshold": calibrate_threshold(data) if len(impostor) else float("nan"),
        "detection_failures": len(data.failures),
        "trials": trials,
        "repeats": repeats,
        "seed": seed,
    }
    return report
