"""Measure recognition on any DIR/IDENTITY/*.jpg tree: one-shot, N-way, open set, small
galleries, threshold; and choose a decision rule (recognition/decision.py) on labelled trees.

Every image is embedded once (biggest face); all protocols then work on that matrix with
fixed seeds, so a run is repeatable and fast.

The background cohort (decision.Cohort) was built from people of one data set (Georgia
Tech s1-s25 less the samples). A set that holds some of them must not meet them in the
background: in every draw, the cohort people who are enrolled or who are the probe's own
person are left out of that probe's background (cohort_members tells who they are). For
an independent figure, `evaluate` goes further and measures the rule on the set's other
identities only, naming the ones it left out ("cohort_overlap").
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from facebot.recognition.decision import Cohort, DecisionRule, as_rule, default_cohort, nearest_people, ratio_score
from facebot.recognition.images import IMAGE_SUFFIXES, ImageError, load_image
from facebot.recognition.match import Matcher, Metric

log = logging.getLogger(__name__)


# N-way one-shot columns, each reported only for sets with at least N identities.
N_WAYS = (20, 10, 4)

# The grid calibrate_rule searches (FaceNet L2 distances between unit vectors, 0..2).
CALIBRATION_LOWS = tuple(np.round(np.arange(0.30, 0.901, 0.02), 2))
CALIBRATION_HIGHS = tuple(np.round(np.arange(0.60, 1.301, 0.01), 2))
CALIBRATION_RATIOS = tuple(np.round(np.arange(0.60, 1.001, 0.01), 2))
CALIBRATION_COHORT_RATIOS = tuple(np.round(np.arange(0.60, 1.001, 0.01), 2))

# Small galleries: this many people enrolled (one photo each), every other identity a stranger.
SMALL_GALLERIES = (1, 2, 3, 5)
SMALL_GALLERY_DRAWS = 50

# A set's identity is a cohort person when it has the cohort row's name and its photos' mean
# embedding lies within this distance of that row (the same person's photos lie within
# 0.64 of their mean for 99% of Georgia Tech photos; another person's mean is 0.75 or more).
SAME_PERSON = 0.6


@dataclass
class EmbeddedSet:
    """Embeddings of a labelled image tree: one row per image whose face was found."""

    identities: list[str]
    labels: np.ndarray  # int index into identities, one per row
    embeddings: np.ndarray  # (rows, D)
    paths: list[str]
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    metric: Metric | None = None  # how rows are compared (None: L2 distance)
    widths: np.ndarray | None = None  # each row's face width in px (DetectedFace.pixels); None: unknown

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


def embed_tree(root: str | Path, recognizer, progress: Callable[[Iterable], Iterable] = lambda x: x,
               identities: Iterable[str] | None = None) -> EmbeddedSet:
    """Embed the biggest face of every image under ROOT/IDENTITY/ (only the folders named in
    `identities` when given); record failures with reasons."""
    items = list_tree(root)
    if identities is not None:
        wanted = set(identities)
        missing = wanted - {name for name, _ in items}
        if missing:
            raise FileNotFoundError(f"{root}: no images for {', '.join(sorted(missing))}")
        items = [(name, path) for name, path in items if name in wanted]
    identities = sorted({name for name, _ in items})
    index = {name: i for i, name in enumerate(identities)}
    labels, rows, paths, failures, widths = [], [], [], [], []
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
        widths.append(faces[0].pixels)
    emb = np.stack(rows).astype(np.float32) if rows else np.zeros((0, recognizer.dim), np.float32)
    return EmbeddedSet(identities, np.asarray(labels, dtype=int), emb, paths, failures, recognizer.metric,
                       np.asarray(widths, dtype=np.float64))


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
    background: np.ndarray | None = None  # distance to the nearest background person (None: no cohort)
    widths: np.ndarray | None = None  # the probe's face width in px (None: unknown, no small-face slack)

    @property
    def score(self) -> np.ndarray:
        """The rule's score d1 / d2 for every probe."""
        return ratio_score(self.nearest, self.second)

    def rates(self, rule: DecisionRule) -> dict:
        """{"false_accept_rate", "true_accept_rate"} of the rule over these draws."""
        return self._rates(rule.accepts(self.nearest, self.score, self.background, self.widths))

    def _rates(self, known: np.ndarray) -> dict:
        return {"false_accept_rate": float(np.sum(self.weight[~self.genuine] * known[~self.genuine])),
                "true_accept_rate": float(np.sum(self.weight[self.genuine] * (known & self.correct)[self.genuine]))}


def resolve_cohort(data: EmbeddedSet, cohort: "Cohort | str | None" = "default") -> Cohort | None:
    """The cohort a protocol uses on `data`: "default" is the shipped one for FaceNet L2
    embeddings of its size (none for another metric or size), None none, a Cohort itself."""
    if cohort is None or isinstance(cohort, Cohort):
        return cohort
    if data.metric is not None:
        return None
    shipped = default_cohort()
    return shipped if shipped.dim == data.embeddings.shape[1] else None


def cohort_members(data: EmbeddedSet, cohort: "Cohort | str | None" = "default") -> dict[int, int]:
    """{identity index in data: cohort row} for the set's identities that are cohort people:
    the same name as a cohort row, and the mean of their embeddings within SAME_PERSON of it."""
    cohort = resolve_cohort(data, cohort)
    if cohort is None or not cohort.identities:
        return {}
    rows = {name: i for i, name in enumerate(cohort.identities)}
    members = {}
    for index, name in enumerate(data.identities):
        if name in rows and np.any(data.labels == index):
            mean = data.embeddings[data.labels == index].astype(np.float64).mean(axis=0)
            mean /= max(np.linalg.norm(mean), 1e-12)
            if cohort.distances(mean)[0, rows[name]] <= SAME_PERSON:
                members[index] = rows[name]
    return members


def cohort_overlap(data: EmbeddedSet, cohort: "Cohort | str | None" = "default") -> list[str]:
    """Names of the set's identities that built the cohort (see cohort_members), sorted as in the set."""
    return [data.identities[i] for i in sorted(cohort_members(data, cohort))]


def without_identities(data: EmbeddedSet, names: Iterable[str]) -> EmbeddedSet:
    """The set less every image of the named identities (failures kept as they were)."""
    drop = set(names)
    keep = [name for name in data.identities if name not in drop]
    old = [data.identities.index(name) for name in keep]
    rows = np.isin(data.labels, old)
    remap = np.full(len(data.identities), -1)
    remap[old] = np.arange(len(old))
    return EmbeddedSet(keep, remap[data.labels[rows]], data.embeddings[rows], [p for p, r in zip(data.paths, rows) if r],
                       list(data.failures), data.metric, None if data.widths is None else data.widths[rows])


class _Background:
    """Each row's distance to every cohort person, and which cohort row is the row's own
    person (-1 for none), so that every draw can leave out the people it must."""

    def __init__(self, data: EmbeddedSet, cohort: "Cohort | str | None"):
        self.cohort = resolve_cohort(data, cohort)
        if self.cohort is None:
            return
        self.members = cohort_members(data, self.cohort)
        self.distances = self.cohort.distances(data.embeddings)
        self.own = np.array([self.members.get(int(c), -1) for c in data.labels], dtype=int)

    def nearest(self, rows: list[int], enrolled: Iterable[int]) -> np.ndarray | None:
        """For each row: the nearest cohort person other than the enrolled ones and its own."""
        if self.cohort is None:
            return None
        d = self.distances[rows].copy()
        d[:, [self.members[c] for c in enrolled if c in self.members]] = np.inf
        own = self.own[rows]
        d[np.flatnonzero(own >= 0), own[own >= 0]] = np.inf
        return d.min(axis=1)


def _enrolled_rows(rng: np.random.Generator, rows: np.ndarray, shots: int) -> list[int]:
    """`shots` random rows of one person (fewer where they have fewer photos, always leaving
    one to probe with when they have two or more)."""
    if shots == 1:  # one draw from the generator, as the protocol always made
        return [int(rng.choice(rows))]
    count = max(1, min(shots, len(rows) - 1))
    return [int(r) for r in rng.choice(rows, size=count, replace=False)]


def _draws(data: EmbeddedSet, split: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]], repeats: int,
           seed: int, background: _Background, shots: int = 1) -> OpenSetDraws:
    """`repeats` seeded draws: each splits the identities into (strangers, members) and
    enrolls `shots` random images per member; probes are the members' other images and all
    the strangers' images."""
    rng = np.random.default_rng(seed)
    groups = _by_identity(data.labels)
    parts = []
    for _ in range(repeats):
        strangers, members = split(rng)
        enrolled = {int(c): _enrolled_rows(rng, groups[int(c)], shots) for c in members}
        labels = [str(c) for c, rows in enrolled.items() for _ in rows]
        matcher = data.matcher(labels, [r for rows in enrolled.values() for r in rows])
        genuine = [r for c in enrolled for r in groups[c] if r not in enrolled[c]]
        impostor = [r for c in strangers for r in groups[int(c)]]
        for rows, is_genuine in ((genuine, True), (impostor, False)):
            if not rows:
                continue
            people = nearest_people(matcher.distances(data.embeddings[rows]), labels)
            names = np.asarray([int(n) if n is not None else -1 for n in people.names])
            bg = background.nearest(rows, enrolled)
            parts.append((people.distance, people.second, is_genuine & (names == data.labels[rows]),
                          np.full(len(rows), is_genuine), np.full(len(rows), 1.0 / len(rows) / repeats),
                          np.full(len(rows), np.inf) if bg is None else bg,
                          np.full(len(rows), np.nan) if data.widths is None else data.widths[rows]))
    if not parts:
        empty = np.zeros(0)
        return OpenSetDraws(empty, empty, empty.astype(bool), empty.astype(bool), empty, None)
    columns = [np.concatenate(column) for column in zip(*parts)]
    return OpenSetDraws(*columns[:5], background=columns[5] if background.cohort is not None else None,
                        widths=columns[6] if data.widths is not None else None)


def open_set_draws(data: EmbeddedSet, stranger_fraction: float = 0.3, repeats: int = 10, seed: int = 0,
                   cohort: "Cohort | str | None" = "default", shots: int = 1) -> OpenSetDraws:
    """Hold out some identities as strangers; enroll `shots` random images (one by default)
    for each of the others.

    Each of the `repeats` seeded draws probes with every other image of the enrolled people
    and every image of the strangers; the nearest people come from the same search the
    product runs (decision.nearest_people over the Matcher's distances), the background
    distance from `cohort` (see resolve_cohort) less the draw's enrolled people and the
    probe's own person.
    """
    classes = np.asarray(sorted(_by_identity(data.labels)))
    n_strangers = max(1, int(round(len(classes) * stranger_fraction)))

    def split(rng):
        shuffled = rng.permutation(classes)
        return shuffled[:n_strangers], shuffled[n_strangers:]

    return _draws(data, split, repeats, seed, _Background(data, cohort), shots)


def small_gallery_draws(data: EmbeddedSet, size: int, repeats: int = SMALL_GALLERY_DRAWS, seed: int = 0,
                        cohort: "Cohort | str | None" = "default", shots: int = 1) -> OpenSetDraws:
    """`size` random people enrolled (`shots` random photos each), every other identity a
    stranger; `repeats` seeded draws, probed as in open_set_draws."""
    if not 1 <= size < len(set(data.labels.tolist())):
        raise ValueError(f"a small gallery of {size} needs more than {size} identities")
    classes = np.asarray(sorted(_by_identity(data.labels)))

    def split(rng):
        shuffled = rng.permutation(classes)
        return shuffled[size:], shuffled[:size]

    return _draws(data, split, repeats, seed, _Background(data, cohort), shots)


def open_set(data: EmbeddedSet, rule: DecisionRule | float, stranger_fraction: float = 0.3, repeats: int = 10,
             seed: int = 0, cohort: "Cohort | str | None" = "default", shots: int = 1) -> dict:
    """Open-set rates of a decision rule (or a plain distance threshold) over seeded draws.

    Returns {"false_accept_rate": strangers' images accepted as anyone,
    "true_accept_rate": enrolled people's other images given their own name}.
    """
    return open_set_draws(data, stranger_fraction, repeats, seed, cohort, shots).rates(as_rule(rule))


def small_galleries(data: EmbeddedSet, rule: DecisionRule | float, sizes=SMALL_GALLERIES,
                    repeats: int = SMALL_GALLERY_DRAWS, seed: int = 0, cohort: "Cohort | str | None" = "default",
                    shots: int = 1) -> dict:
    """{str(size): open-set rates} with `size` people enrolled and every other identity a
    stranger, for each size smaller than the number of identities."""
    rule = as_rule(rule)
    identities = len(set(data.labels.tolist()))
    return {str(k): small_gallery_draws(data, k, repeats, seed, cohort, shots).rates(rule) for k in sizes if k < identities}


def calibrate_rule(datasets: list[EmbeddedSet], far: float = 0.005, stranger_fraction: float = 0.3, repeats: int = 10,
                   seed: int = 0, lows=CALIBRATION_LOWS, highs=CALIBRATION_HIGHS, ratios=CALIBRATION_RATIOS,
                   small_far: float = 0.002, sizes=SMALL_GALLERIES, small_repeats: int = SMALL_GALLERY_DRAWS,
                   cohort_ratios=CALIBRATION_COHORT_RATIOS,
                   cohort: "Cohort | str | None" = "default") -> tuple[DecisionRule, list[dict]]:
    """Choose the rule in two steps and return it with each set's expected rates (same draws).

    1. low, high, ratio: the rule without background that keeps the open-set FAR <= `far`
       on every set while maximising the worst TAR across sets. Every (low, high >= low,
       ratio) of the grid is scored on the open-set draws of each set; ties go to the
       lowest worst FAR, then the best mean TAR, then the most cautious rule (smallest
       high, ratio, low).
    2. cohort_ratio: with those three fixed, the background test that keeps the FAR of
       small galleries (`sizes` people enrolled, everyone else a stranger) <= `small_far`
       on every set and size while maximising their worst TAR (ties: lowest worst FAR, best
       mean TAR, smallest ratio); where no grid value meets `small_far`, the one with the
       lowest worst FAR. The background test only ever refuses faces, so step 1's open-set
       FAR bound still holds. Cohort people in a set are left out of their own and the
       enrolled people's background (cohort_members). Without a cohort (another embedding
       size, cohort=None, no sizes or cohort_ratios) the rule has cohort_ratio 0.

    Each expected row: the open-set "false_accept_rate" and "true_accept_rate" of the
    final rule, and "small_false_accept_rate" / "small_true_accept_rate", its worst over
    the sizes (absent without a background step). The figures are in-sample: judge the
    rule on sets it was not chosen on. Raises ValueError for sets compared by another metric
    than FaceNet's L2 distance, sets with fewer than two identities, or when no rule meets `far`.
    """
    if not datasets:
        raise ValueError("no data set to calibrate on")
    for data in datasets:
        if data.metric is not None:
            raise ValueError("calibrate_rule fits FaceNet L2 distances; a Siamese model keeps its threshold")
        if len(set(data.labels.tolist())) < 2:
            raise ValueError("each data set needs at least two identities with faces")
    draws = [open_set_draws(d, stranger_fraction, repeats, seed, cohort) for d in datasets]
    grid_far, grid_tar = zip(*(_grid_rates(d, lows, highs, ratios) for d in draws))  # each (L, H, R)
    worst_far, worst_tar, mean_tar = np.max(grid_far, axis=0), np.min(grid_tar, axis=0), np.mean(grid_tar, axis=0)
    low_grid, high_grid, ratio_grid = np.meshgrid(lows, highs, ratios, indexing="ij")
    valid = (high_grid >= low_grid) & (worst_far <= far + 1e-12)
    if not valid.any():
        raise ValueError(f"no rule of the grid keeps the false-accept rate at or below {far:.2%} on every set")
    # np.lexsort sorts by the last key first: worst TAR (desc), worst FAR, mean TAR (desc), high, ratio, low.
    keys = [k[valid] for k in (low_grid, ratio_grid, high_grid, -mean_tar, worst_far, -worst_tar)]
    best = int(np.lexsort(keys)[0])
    rule = DecisionRule(float(low_grid[valid][best]), float(high_grid[valid][best]), float(ratio_grid[valid][best]),
                        cohort_ratio=0.0)
    small = []
    if len(cohort_ratios) and all(resolve_cohort(d, cohort) is not None for d in datasets):
        small = [[small_gallery_draws(d, k, small_repeats, seed, cohort) for k in sizes if k < len(set(d.labels.tolist()))]
                 for d in datasets]
    if any(small):
        rule = _fit_cohort_ratio(rule, [s for per_set in small for s in per_set], small_far, cohort_ratios)
    expected = []
    for d, per_set in zip(draws, small or [[]] * len(draws)):
        row = d.rates(rule)
        if rule.uses_cohort and per_set:
            rates = [s.rates(rule) for s in per_set]
            row["small_false_accept_rate"] = max(r["false_accept_rate"] for r in rates)
            row["small_true_accept_rate"] = min(r["true_accept_rate"] for r in rates)
        expected.append(row)
    return rule, expected


def _fit_cohort_ratio(rule: DecisionRule, draws: list[OpenSetDraws], small_far: float, cohort_ratios) -> DecisionRule:
    """Step 2 of calibrate_rule: the cohort_ratio for `rule` over small-gallery draws."""
    candidates = [DecisionRule(rule.low, rule.high, rule.ratio, cohort_ratio=float(c)) for c in cohort_ratios]
    rates = np.array([[list(d.rates(c).values()) for d in draws] for c in candidates])  # (C, draws, [far, tar])
    worst_far, worst_tar, mean_tar = rates[:, :, 0].max(axis=1), rates[:, :, 1].min(axis=1), rates[:, :, 1].mean(axis=1)
    ratios = np.array([c.cohort_ratio for c in candidates])
    valid = np.flatnonzero(worst_far <= small_far + 1e-12)
    if len(valid):  # np.lexsort sorts by the last key first: worst TAR (desc), worst FAR, mean TAR (desc), ratio
        return candidates[valid[np.lexsort([k[valid] for k in (ratios, -mean_tar, worst_far, -worst_tar)])[0]]]
    return candidates[int(np.lexsort((-ratios, -worst_tar, worst_far))[0])]


def _grid_rates(draws: OpenSetDraws, lows, highs, ratios) -> tuple[np.ndarray, np.ndarray]:
    """FAR and TAR of every (low, high, ratio) rule over the draws, as (L, H, R) arrays; each
    rule keeps the default small-face slack (a small probe may lie that much beyond high)."""
    lows, highs, ratios = (np.asarray(v, dtype=np.float64) for v in (lows, highs, ratios))
    template = DecisionRule()
    beyond_high = draws.nearest - (template.highs(draws.widths, len(draws.nearest)) - template.high)
    in_ratio = draws.score[None, :] <= ratios[:, None]  # (R, probes)
    impostor, genuine = ~draws.genuine, draws.genuine
    w_far = draws.weight * impostor
    w_tar = draws.weight * (genuine & draws.correct)
    far = np.zeros((len(lows), len(highs), len(ratios)))
    tar = np.zeros_like(far)
    for i, low in enumerate(lows):
        below = draws.nearest <= low
        for j, high in enumerate(highs):
            known = below[None, :] | ((beyond_high <= high)[None, :] & in_ratio)
            far[i, j] = known @ w_far
            tar[i, j] = known @ w_tar
    return far, tar


SPREAD_SEEDS = 5  # open-set draws measured again with the next seeds, for their range


def open_set_seeds(data: EmbeddedSet, rule: DecisionRule | float, repeats: int = 10, seed: int = 0,
                   cohort: "Cohort | str | None" = "default", shots: int = 1, count: int = SPREAD_SEEDS) -> dict:
    """The open set of `open_set` at seeds `seed` .. `seed` + `count` - 1: {"seeds", and the
    "false_accept_rate" and "true_accept_rate" of each, in that order}. With a few people the
    figures move with who is drawn as a stranger: their range says by how much."""
    seeds = list(range(seed, seed + count))
    rates = [open_set(data, rule, repeats=repeats, seed=k, cohort=cohort, shots=shots) for k in seeds]
    return {"seeds": seeds, "false_accept_rate": [r["false_accept_rate"] for r in rates],
            "true_accept_rate": [r["true_accept_rate"] for r in rates]}


def evaluate(data: EmbeddedSet, rule: DecisionRule | float, seed: int = 0, trials: int = 1000, repeats: int = 10,
             cohort: "Cohort | str | None" = "default", shots: int = 1) -> dict:
    """Run every protocol and return the report dictionary (fractions, not percentages).

    `rule` is a DecisionRule or a plain distance threshold. "threshold" is the largest
    distance the rule ever accepts (its `high`); the image-pair rates are measured there.
    N-way columns appear only for N <= the number of identities.

    The rule's own figures, the open set and "small_galleries" ({size: rates} with 1, 2, 3
    and 5 people enrolled and every other identity a stranger, 50 draws), with `shots` photos
    enrolled per person (1: one-shot, the product's usual case), are measured on
    the identities that did not build the background cohort when the rule uses it: those
    that did are named in "cohort_overlap" and left out ("open_set_identities" counts the
    rest), so that the figures stay independent of the cohort. One-shot rank-1, N-way and
    the pair rates use every identity.
    """
    rule = as_rule(rule)
    threshold = rule.high
    genuine, impostor = pair_distances(data)
    overlap = cohort_overlap(data, cohort) if rule.uses_cohort else []
    ruled = without_identities(data, overlap) if overlap else data
    spread = open_set_seeds(ruled, rule, repeats=repeats, seed=seed, cohort=cohort, shots=shots)
    report = {
        "identities": len(data.identities),
        "images": data.images,
        "rank1": one_shot_rank1(data, repeats=repeats, seed=seed),
        "n_way": {str(n): n_way_accuracy(data, n, trials=trials, seed=seed + n) for n in N_WAYS if n <= len(data.identities)},
        "threshold": threshold,
        "rule": rule.to_dict(),
        "open_set_identities": len(ruled.identities),
        "cohort_overlap": overlap,
        "shots": shots,
        # the open set at `seed` is the first of the seeds measured for the range
        "false_accept_rate": spread["false_accept_rate"][0],
        "true_accept_rate": spread["true_accept_rate"][0],
        "open_set_seeds": spread,
        "small_galleries": small_galleries(ruled, rule, seed=seed, cohort=cohort, shots=shots),
        "pair_false_accept_rate": float(np.mean(impostor <= threshold)) if len(impostor) else float("nan"),
        "pair_true_accept_rate": float(np.mean(genuine <= threshold)) if len(genuine) else float("nan"),
        "calibrated_threshold": calibrate_threshold(data) if len(impostor) else float("nan"),
        "detection_failures": len(data.failures),
        "trials": trials,
        "repeats": repeats,
        "seed": seed,
    }
    return report
