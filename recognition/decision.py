"""When is the nearest enrolled person the face's owner? A two-level rule on FaceNet distances,
checked against a shipped background cohort.

A single raw distance cannot serve lab photos and real ones at once: strangers photographed
in one lab fall as close as 0.72 to someone (Georgia Tech), while press photos of one
person lie up to 1.0 apart (LFW). What separates them is who else is near: an owner's face
is clearly nearer to its own person than to anyone else, a stranger's is about as near to
other people. "Other people" are the other enrolled people and, so that a gallery of one
or two people is no easier to fool than a big one, a background cohort: faces of people who
are never enrolled (models/weights/cohort-gt.npy, see Cohort). For a face whose nearest
person is at distance d1 (the minimum over that person's samples), the next enrolled person
at d2 and the nearest background person at c:

    unknown  when d1 > high (+ small_slack for a face under small_face px)   (beyond: nobody)
    unknown  when d1 > cohort_ratio * c                      (not clearly nearer than the background)
    known    when d1 <= low, or d1 / d2 <= ratio             (close, or clearly the nearest enrolled)
    unknown  otherwise

`score` is d1 / d2 (0 when nobody else is enrolled). The background test applies at every
distance, `low` included: lookalike strangers fall below `low` too, and the background
catches most of them. cohort_ratio 0 switches the background off; a plain threshold t is
the rule low = high = t, ratio 0, cohort_ratio 0 (from_threshold), exactly as before the
cohort existed.
"""
from __future__ import annotations

import functools
import hashlib
import io
from dataclasses import asdict, dataclass, field, fields
from importlib.resources import files
from pathlib import Path
from typing import Sequence

import numpy as np

from facebot.models.facenet import WeightsMismatch

# The FaceNet default, for faces cut with the BOX crop (recognition/align.py); chosen on
# Georgia Tech only, LFW chose nothing. low, high and ratio: calibrate_rule's open-set fit
# (FAR <= 0.5%) on all 50 Georgia Tech people, no background; cohort_ratio: then chosen on
# the 21 cohort people alone (small galleries of 1, 2, 3 and 5 people, each probe's own
# person and the enrolled ones left out of the background), the value keeping their
# false-accept rate at most 0.2% with the best true-accept rate. `python -m facebot.lab.defaults`
# derives them; tests/test_derivation.py derives them again, so a change to the detector or
# the crop that moves them fails the suite rather than leaving numbers no procedure gives
# (derived again, with the cohort, small-face slack and enrollment gates, in facebot 0.2's
# last round: 0.82 / 0.95 / 0.83 / 0.84 had shipped since d054756, which the detector's later
# changes, grey padding to tilted faces cropped upright, no longer reproduced).
# Figures on the other 29 Georgia Tech people and on LFW: README, "Decision rule". (The
# SQUARE crop of facebot 0.1 had 0.74 / 0.98 / 0.82 / 0.82.)
DEFAULT_LOW = 0.80
DEFAULT_HIGH = 0.96
DEFAULT_RATIO = 0.83
DEFAULT_COHORT_RATIO = 0.84
# Small faces: a face under DEFAULT_SMALL_FACE px wide (in the pixels it was cut from) may lie
# up to high + DEFAULT_SMALL_SLACK from its person. FaceNet sees less of a small face, so the
# owner's distance grows, while strangers' small faces lie no nearer to enrolled people than
# big ones. Chosen on Georgia Tech photos degraded as real photos are (shrunk, compressed,
# relit), probed against one clean photo per person: `python -m facebot.lab.small_faces`,
# which prints the figures; LFW chose nothing (README, "Small faces"). (Before the rule above
# was derived again: 64 px and 0.10 with high 0.95; now 72 px and 0.05 with high 0.96, so a
# small face may lie up to 1.01 rather than 1.05.)
DEFAULT_SMALL_FACE = 72
DEFAULT_SMALL_SLACK = 0.05
# The FaceNet backend whose embeddings the rule above and the cohort below were derived on:
# the float graph. The default backend (int8 weights, recognition/embed.py) runs them as
# they are; lab/defaults.py and lab/cohort.py derive on this one.
DERIVED_ON_EMBEDDER = "tflite"

# The shipped background cohort: 21 rows, the L2-normalised mean FaceNet embedding of each
# person's 15 photos, for Georgia Tech face database people s1-s25 less the four whose
# photos ship as samples (s2, s5, s11, s23). Embeddings only, no photos. Rebuilt by
# `python -m facebot.lab.cohort` (lab/cohort.py), which prints both constants below.
COHORT_FILE = "cohort-gt.npy"
COHORT_SHA256 = "92a584c55c0d62afc1cf57930dd1096a652d59b1675a4d38bf2808eab5b890d4"
COHORT_IDENTITIES = ("s1", "s3", "s4", "s6", "s7", "s8", "s9", "s10", "s12", "s13", "s14", "s15", "s16", "s17",
                     "s18", "s19", "s20", "s21", "s22", "s24", "s25")
COHORT_SOURCE = "georgia_tech"


class CohortMismatch(WeightsMismatch):
    """The cohort file on disk is not the one the default rule was calibrated with."""


@dataclass(frozen=True, eq=False)
class Cohort:
    """Background people: one unit embedding per person (`matrix`, (C, D) float32) and their
    names in the data set they came from (`identities`, e.g. Georgia Tech folder names)."""

    matrix: np.ndarray
    identities: tuple = ()
    source: str = ""
    _sq_norms: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        matrix = np.ascontiguousarray(np.asarray(self.matrix, dtype=np.float32))
        if matrix.ndim != 2 or len(matrix) == 0:
            raise ValueError("a cohort is a non-empty (people, dims) matrix")
        if self.identities and len(self.identities) != len(matrix):
            raise ValueError("one identity name per cohort row")
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "identities", tuple(str(n) for n in self.identities))
        object.__setattr__(self, "_sq_norms", np.sum(matrix.astype(np.float64) ** 2, axis=1))

    def __len__(self) -> int:
        return len(self.matrix)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def distances(self, queries: np.ndarray) -> np.ndarray:
        """(M, C) L2 distances from each query embedding to each background person."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        sq = np.sum(q**2, axis=1)[:, None] + self._sq_norms[None, :] - 2.0 * q @ self.matrix.T.astype(np.float64)
        return np.sqrt(np.maximum(sq, 0.0))

    def nearest(self, queries: np.ndarray) -> np.ndarray:
        """(M,) distance from each query to its nearest background person."""
        return self.distances(queries).min(axis=1)

    def overlap(self, names: Sequence[str]) -> list[str]:
        """The names among `names` that are cohort people's names (same data set assumed)."""
        own = set(self.identities)
        return [str(n) for n in names if str(n) in own]


def load_cohort(path: str | Path | None = None, sha256: str | None = COHORT_SHA256,
                identities: Sequence[str] = COHORT_IDENTITIES, source: str = COHORT_SOURCE) -> Cohort:
    """Read a cohort .npy (the shipped one by default) after checking its SHA-256.

    Raises CohortMismatch when the bytes are not the pinned ones (sha256=None skips the
    check, for a cohort one builds oneself) and ValueError for a file that is no matrix.
    """
    blob = Path(path).read_bytes() if path is not None else (files("facebot.models") / "weights" / COHORT_FILE).read_bytes()
    if sha256 is not None:
        digest = hashlib.sha256(blob).hexdigest()
        if digest != sha256:
            raise CohortMismatch(f"{path or COHORT_FILE} has SHA-256 {digest}, expected {sha256}: "
                                 "rebuild it with `python -m facebot.lab.cohort` or reinstall facebot")
    matrix = np.load(io.BytesIO(blob), allow_pickle=False)
    return Cohort(matrix, tuple(identities) if len(identities) == len(matrix) else (), source)


@functools.lru_cache(maxsize=1)
def default_cohort() -> Cohort:
    """The shipped cohort, read and checked once per process."""
    return load_cohort()


@dataclass(frozen=True)
class DecisionRule:
    """Known up to `low`, or up to `high` when d1 / d2 <= `ratio`; and never unless
    d1 <= `cohort_ratio` x the distance to the nearest background person (0: no such test).
    For a face under `small_face` px wide, `high` is `high` + `small_slack` (0: no slack)."""

    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH
    ratio: float = DEFAULT_RATIO
    cohort_ratio: float = DEFAULT_COHORT_RATIO
    small_face: float = DEFAULT_SMALL_FACE
    small_slack: float = DEFAULT_SMALL_SLACK

    def __post_init__(self):
        if (not (0.0 <= self.low <= self.high) or not (0.0 <= self.ratio <= 1.0)
                or not (0.0 <= self.cohort_ratio <= 1.0) or self.small_face < 0 or self.small_slack < 0):
            raise ValueError(f"need 0 <= low <= high, ratios in [0, 1] and no negative small-face values, got {self}")

    @classmethod
    def from_threshold(cls, threshold: float) -> "DecisionRule":
        """The plain rule 'known when d1 <= threshold' (no band, no background, no slack)."""
        return cls(low=float(threshold), high=float(threshold), ratio=0.0, cohort_ratio=0.0, small_face=0.0,
                   small_slack=0.0)

    @property
    def is_threshold(self) -> bool:
        """True for a plain distance threshold (no band, no background test, no slack)."""
        return self.low == self.high and not self.uses_cohort and not self.small_slack

    def highs(self, widths: np.ndarray | None, count: int) -> np.ndarray:
        """(count,) the `high` each face gets: with the slack where its width (px, nan when
        unknown) is under `small_face`; None: every width unknown."""
        if widths is None or not self.small_slack:
            return np.full(count, self.high)
        with np.errstate(invalid="ignore"):
            small = np.asarray(widths, dtype=np.float64) < self.small_face  # nan compares False
        return self.high + self.small_slack * small

    @property
    def uses_cohort(self) -> bool:
        """True when the background cohort takes part (cohort_ratio > 0)."""
        return self.cohort_ratio > 0

    def to_dict(self, saved: bool = False) -> dict:
        """Every field ({"low", "high", "ratio", "cohort_ratio", "small_face", "small_slack"}) as
        plain floats, for reports and JSON. `saved`: for the gallery settings, leaving out the
        small-face fields where from_dict would restore them anyway, so that a host still on
        the previous release (which refuses fields it does not know) reads the rule too."""
        values = {k: float(v) for k, v in asdict(self).items()}
        if saved:
            old = {k: v for k, v in values.items() if k not in ("small_face", "small_slack")}
            if DecisionRule.from_dict(old) == self:
                return old
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "DecisionRule":
        """The rule saved by to_dict; a missing key takes its default, an unknown one is refused.

        A rule saved before the cohort existed has no "cohort_ratio": a plain threshold
        (low == high) stays a plain threshold (0, no background), a two-level rule gains the
        default background test. Likewise one saved before the small-face slack existed: a
        plain threshold stays plain, another rule gains the default slack.
        """
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown decision rule field(s): {', '.join(sorted(unknown))}")
        try:
            numbers = {k: float(v) for k, v in values.items()}
        except (TypeError, ValueError) as exc:  # a None, a list or a word where a number belongs
            raise ValueError(f"decision rule values must be numbers: {values}") from exc
        if "cohort_ratio" not in numbers and "low" in numbers and numbers["low"] == numbers.get("high", DEFAULT_HIGH):
            numbers["cohort_ratio"] = 0.0
        plain = numbers.get("low", DEFAULT_LOW) == numbers.get("high", DEFAULT_HIGH) and not numbers.get("cohort_ratio", 1)
        if "small_slack" not in numbers and plain:  # saved before the slack existed: still a plain threshold
            numbers.update(small_face=0.0, small_slack=0.0)
        return cls(**numbers)

    def failures(self, nearest: np.ndarray, score: np.ndarray, background: np.ndarray | None = None,
                 widths: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Which clause of the rule each face fails, elementwise, in the order the rule is
        said: {"far": beyond `high` (with the small-face slack where it applies), "unclear":
        beyond `low` and about as near to another enrolled person (d1 / d2 over `ratio`),
        "background": about as near to a background face}. Arguments as for `accepts`."""
        nearest, score = np.asarray(nearest, dtype=np.float64), np.asarray(score, dtype=np.float64)
        failed = {"far": ~(nearest <= self.highs(widths, len(nearest))),
                  "unclear": ~((nearest <= self.low) | (score <= self.ratio)),
                  "background": np.zeros(len(nearest), dtype=bool)}
        if self.uses_cohort and background is not None:
            background = np.asarray(background, dtype=np.float64)
            failed["background"] = ~(np.isinf(background) | (nearest <= self.cohort_ratio * background))
        return failed

    def accepts(self, nearest: np.ndarray, score: np.ndarray, background: np.ndarray | None = None,
                widths: np.ndarray | None = None) -> np.ndarray:
        """Known or not, elementwise, from the nearest person's distance d1, the score d1 / d2,
        the distance to the nearest background person (None or inf: no background known,
        the background test is skipped) and the face's width in px (None or nan: unknown, no
        small-face slack): no clause of `failures` failed."""
        failed = self.failures(nearest, score, background, widths)
        return ~(failed["far"] | failed["unclear"] | failed["background"])

    def refusal(self, nearest: float, score: float, background: float = float("inf"),
                width: float = float("nan")) -> str | None:
        """Why the rule leaves one face unknown: "nobody" (no one enrolled), else the first
        clause of `failures` it fails ("far", "unclear", "background"); None where the rule
        names the face. Arguments as for `accepts`, one face's."""
        if not np.isfinite(nearest):
            return "nobody"
        failed = self.failures(np.array([nearest]), np.array([score]), np.array([background]),
                               None if width is None else np.array([width]))
        return next((clause for clause, mask in failed.items() if mask[0]), None)

    def decide(self, distances: np.ndarray, labels: "Sequence[str] | PersonCodes",
               background: np.ndarray | None = None, widths: np.ndarray | None = None) -> "Decisions":
        """Decide for each query from its (M, N) distances to N enrolled samples and their
        labels (or the PersonCodes of those labels, which a Matcher keeps to save the work),
        its (M,) distance to the nearest background person (None: no background) and its
        face's width in px (None: unknown)."""
        people = nearest_people(distances, labels)
        known = self.accepts(people.distance, people.score, background, widths) & np.isfinite(people.distance)
        return Decisions(people.names, people.distance, people.score, known)

    def clauses(self) -> tuple[list[str], dict[str, float]]:
        """The rule as the names of its clauses, in the order they are said, and the numbers
        they mention: ["threshold"], or "close" (low == high) or "band", then "background"
        where the cohort is used and "small_faces" where small faces get slack. `describe`
        says them in English; the bot in the user's language (texts "rule_<clause>")."""
        values = {"low": self.low, "high": self.high, "ratio": self.ratio, "cohort": self.cohort_ratio,
                  "small_high": self.high + self.small_slack, "small_face": self.small_face}
        if self.is_threshold:
            return ["threshold"], values
        names = ["close" if self.low == self.high else "band"]
        names += ["background"] if self.uses_cohort else []
        names += ["small_faces"] if self.small_slack else []
        return names, values

    def describe(self) -> str:
        """One line for reports: the plain threshold, or the numbers in words."""
        names, values = self.clauses()
        words = "".join(_CLAUSES[name].format(**values) for name in names)
        return words if self.is_threshold else "rule: " + words


# DecisionRule.describe's words for each clause
_CLAUSES = {
    "threshold": "threshold {low:.3f}",
    "close": "known at distance <= {low:.3f}",
    "band": "known at distance <= {low:.3f}, or <= {high:.3f} when the ratio (distance / next person's distance) "
            "<= {ratio:.3f}",
    "background": "; never beyond {cohort:.3f} x the distance to the nearest background face",
    "small_faces": "; up to {small_high:.3f} for faces under {small_face:.0f} px",
}


DEFAULT_RULE = DecisionRule()


def as_rule(rule: "DecisionRule | float | None", default: "DecisionRule" = DEFAULT_RULE) -> DecisionRule:
    """A DecisionRule from a rule, a float (a plain distance threshold), or None (`default`)."""
    if rule is None:
        return default
    if isinstance(rule, DecisionRule):
        return rule
    return DecisionRule.from_threshold(float(rule))


@dataclass(frozen=True)
class Decisions:
    """Per query: nearest person's name (None if nobody), distance d1, score d1 / d2, known."""

    names: list
    distance: np.ndarray
    score: np.ndarray
    known: np.ndarray


@dataclass(frozen=True)
class NearestPeople:
    """Per query: nearest person (name and index into `people`), its distance, the next
    person's distance (inf when only one person), and score = nearest / second."""

    people: list
    index: np.ndarray
    distance: np.ndarray
    second: np.ndarray

    @property
    def names(self) -> list:
        return [self.people[i] if i >= 0 else None for i in self.index]

    @property
    def score(self) -> np.ndarray:
        return ratio_score(self.distance, self.second)


def ratio_score(nearest: np.ndarray, second: np.ndarray) -> np.ndarray:
    """d1 / d2 elementwise: 0 when there is no second person (d2 inf), 1 when both are 0,
    inf when there is nobody at all (d1 inf)."""
    nearest, second = np.asarray(nearest, dtype=np.float64), np.asarray(second, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = nearest / second
    score = np.where(np.isinf(second) & np.isfinite(nearest), 0.0, score)
    score = np.where((second == 0) & (nearest == 0), 1.0, score)
    return np.where(np.isinf(nearest), np.inf, score)


@dataclass(frozen=True)
class PersonCodes:
    """Sample labels as integer codes: people (sorted, unique) and one code per sample."""

    people: list
    codes: np.ndarray

    @classmethod
    def of(cls, labels: Sequence[str]) -> "PersonCodes":
        if len(labels) == 0:
            return cls([], np.zeros(0, dtype=int))
        people, codes = np.unique(np.asarray(list(labels), dtype=str), return_inverse=True)
        return cls([str(p) for p in people], codes.astype(int).ravel())


def nearest_people(distances: np.ndarray, labels: "Sequence[str] | PersonCodes") -> NearestPeople:
    """Nearest and second-nearest *person* for each query, a person's distance being the
    minimum over their samples. `distances` is (M, N) over N samples labelled `labels`."""
    distances = np.atleast_2d(np.asarray(distances, dtype=np.float64))
    codes = labels if isinstance(labels, PersonCodes) else PersonCodes.of(labels)
    m = len(distances)
    if len(codes.codes) == 0:
        inf = np.full(m, np.inf)
        return NearestPeople([], np.full(m, -1), inf, inf.copy())
    if distances.shape[1] != len(codes.codes):
        raise ValueError("one label per column of distances")
    best = np.argmin(distances, axis=1)
    index = codes.codes[best]
    nearest = distances[np.arange(m), best]
    # The second person: the nearest sample of anyone else (an O(M*N) mask, cheap next to the distances).
    second = np.where(codes.codes[None, :] == index[:, None], np.inf, distances).min(axis=1)
    return NearestPeople(codes.people, index, nearest, second)
