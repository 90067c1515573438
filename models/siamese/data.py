"""Face data for the Siamese networks: a labelled set of crops and embeddings, an identity
split that never shares a person between sides, PK batches, and light augmentation.

Nothing here detects faces: crops (and FaceNet embeddings) are computed by the caller
(`bot/siamese_cli.py` uses `recognition`) and handed in, because `models` must not depend
on `recognition`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass
class FaceSet:
    """Crops and FaceNet embeddings of a labelled image tree, one row per face.

    crops: (N, S, S, 3) uint8 RGB; embeddings: (N, 512) float32 (may be empty (N, 0) when
    unknown); labels: (N,) int index into identities; paths: source image per row.
    """

    identities: list[str]
    labels: np.ndarray
    crops: np.ndarray
    embeddings: np.ndarray
    paths: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def people(self) -> list[str]:
        """Names of the identities that have at least one row, in order."""
        return [self.identities[i] for i in np.unique(self.labels)]

    def subset(self, names: list[str] | set[str]) -> "FaceSet":
        """Rows of the named identities only; identities and label indices are kept as they are."""
        wanted = {self.identities.index(n) for n in names}
        rows = np.flatnonzero(np.isin(self.labels, list(wanted)))
        return FaceSet(self.identities, self.labels[rows], self.crops[rows], self.embeddings[rows],
                       [self.paths[r] for r in rows])


@dataclass(frozen=True)
class Split:
    """Disjoint identity lists: `fit` trains, `val` stops training early, `test` is never seen."""

    fit: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    seed: int

    @property
    def train(self) -> tuple[str, ...]:
        """Every identity the model may see while being built (fit + validation)."""
        return tuple(sorted(self.fit + self.val))

    def to_dict(self) -> dict:
        return {"seed": self.seed, "fit": list(self.fit), "val": list(self.val), "test": list(self.test)}

    @classmethod
    def from_dict(cls, d: dict) -> "Split":
        return cls(tuple(d["fit"]), tuple(d["val"]), tuple(d["test"]), int(d["seed"]))


def split_identities(identities: list[str], test: int = 15, val: int = 5, seed: int = 0) -> Split:
    """Shuffle the identities with `seed` and deal them into fit / val / test by person.

    With 50 people and the defaults: 30 fit, 5 validation (together the 35 training
    people), 15 test people never seen in training. Raises ValueError when too few people.
    """
    names = sorted(set(identities))
    if len(names) < test + val + 2:
        raise ValueError(f"need at least {test + val + 2} identities for a {test}/{val} split, got {len(names)}")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    return Split(tuple(sorted(order[val + test:])), tuple(sorted(order[test:test + val])),
                 tuple(sorted(order[:test])), seed)


# -- batches -------------------------------------------------------------------------------
def pk_batches(labels: np.ndarray, people: int, per_person: int, rng: np.random.Generator):
    """Yield forever batches of row indices: `people` identities x `per_person` rows each.

    PK batches give every step both positives and negatives, so one encoder pass over the
    batch yields all its same/different pairs (or triplets). Identities with fewer than
    two rows are skipped; rows are drawn without replacement where a person has enough.
    """
    groups = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
    groups = {c: rows for c, rows in groups.items() if len(rows) >= 2}
    if len(groups) < 2:
        raise ValueError("need at least two identities with two or more images")
    classes = np.asarray(sorted(groups))
    people = min(people, len(classes))
    while True:
        chosen = rng.choice(classes, size=people, replace=False)
        yield np.concatenate([rng.choice(groups[int(c)], size=per_person, replace=len(groups[int(c)]) < per_person)
                              for c in chosen])


def pair_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All unordered pairs (i < j) of a batch: (i, j, same) with same 1.0 for one person."""
    i, j = np.triu_indices(len(labels), k=1)
    return i, j, (labels[i] == labels[j]).astype(np.float32)


# -- images --------------------------------------------------------------------------------
def resize_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 crops (N, S, S, 3) to (N, size, size, 3)."""
    if crops.shape[1] == size:
        return crops
    interp = cv2.INTER_AREA if crops.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(c, (size, size), interpolation=interp) for c in crops]) if len(crops) else \
        np.zeros((0, size, size, 3), np.uint8)


def center_crop(images: np.ndarray, size: int) -> np.ndarray:
    """The central size x size window of each image (what evaluation sees)."""
    off = (images.shape[1] - size) // 2
    return images[:, off:off + size, off:off + size]


def augment(images: np.ndarray, size: int, rng: np.random.Generator, brightness: float = 0.2,
            contrast: float = 0.2) -> np.ndarray:
    """Light augmentation of uint8 images (N, S, S, 3) into float32 (N, size, size, 3) in 0..255.

    A random size x size window (a shift of up to (S - size) / 2 pixels each way), a
    horizontal flip half the time, and brightness / contrast scaled by up to the given
    fractions: the Georgia Tech photos differ by pose and lighting, not by scale.
    """
    n, s = len(images), images.shape[1]
    out = np.empty((n, size, size, 3), np.float32)
    xs, ys = rng.integers(0, s - size + 1, size=n), rng.integers(0, s - size + 1, size=n)
    flips = rng.random(n) < 0.5
    gains = 1.0 + rng.uniform(-contrast, contrast, size=n)
    shifts = 255.0 * rng.uniform(-brightness, brightness, size=n) / 2
    for k in range(n):
        window = images[k, ys[k]:ys[k] + size, xs[k]:xs[k] + size].astype(np.float32)
        if flips[k]:
            window = window[:, ::-1]
        mean = window.mean()
        out[k] = (window - mean) * gains[k] + mean + shifts[k]
    return np.clip(out, 0, 255, out=out)


# -- cache ---------------------------------------------------------------------------------
def cache_key(paths: list[str | Path], extra: str = "") -> str:
    """A short hash of the image paths with their sizes and mtimes (and `extra`), so an
    edited, added or removed photo gives a new cache file."""
    h = hashlib.sha1(f"v{CACHE_VERSION}|{extra}".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{Path(p).resolve()}|{st.st_size}|{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:16]


def save_faceset(data: FaceSet, path: Path) -> None:
    """Write a FaceSet to one .npz file atomically (a crash never leaves half a cache)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, crops=data.crops, embeddings=data.embeddings, labels=data.labels,
                        meta=np.asarray(json.dumps({"identities": data.identities, "paths": data.paths})))
    os.replace(tmp, path)


def load_faceset(path: Path) -> FaceSet:
    """Read a FaceSet written by save_faceset."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return FaceSet(meta["identities"], z["labels"].astype(int), z["crops"], z["embeddings"].astype(np.float32),
                       meta["paths"])
