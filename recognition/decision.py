"""When is the nearest enrolled person the face's owner? A two-level rule on FaceNet distances.

A single raw distance cannot serve lab photos and real ones at once: strangers photographed
in one lab fall as close as 0.72 to someone (Georgia Tech), while press photos of one
person lie up to 1.0 apart (LFW). What separates them is the second-nearest *person*: an
owner's face is clearly nearer to its own person than to anyone else, a stranger's is
about as near to several people. The rule, for a face whose nearest person is at distance
d1 (the minimum over that person's samples) and the next person at d2:

    known  when d1 <= low                                   (close: nobody else matters)
    known  when low < d1 <= high and d1 / d2 <= ratio       (in the band: clearly nearest)
    unknown otherwise                                       (beyond high: nobody)

`score` is d1 / d2, the figure the band decision reads (0 when nobody else is enrolled,
since no second person can object; the rule is then a plain distance threshold at `high`).
A plain threshold t is the rule low = high = t.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

# The FaceNet default, chosen by `calibrate_rule` (recognition/evaluate.py) on the Georgia
# Tech faces alone (50 people x 15 photos, open-set protocol, FAR <= 0.5%), so that the LFW
# press photos stay an honest test: see README, "Decision rule", for both figures and the
# reverse direction.
DEFAULT_LOW = 0.74
DEFAULT_HIGH = 0.98
DEFAULT_RATIO = 0.82


@dataclass(frozen=True)
class DecisionRule:
    """Distances up to `low` are accepted; up to `high` only when d1 / d2 <= `ratio`."""

    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH
    ratio: float = DEFAULT_RATIO

    def __post_init__(self):
        if not (0.0 <= self.low <= self.high) or not (0.0 <= self.ratio <= 1.0):
            raise ValueError(f"need 0 <= low <= high and 0 <= ratio <= 1, got {self}")

    @classmethod
    def from_threshold(cls, threshold: float) -> "DecisionRule":
        """The plain rule 'known when d1 <= threshold' (the band is empty)."""
        return cls(low=float(threshold), high=float(threshold), ratio=0.0)

    @property
    def is_threshold(self) -> bool:
        """True for a plain distance threshold (no band where the second person counts)."""
        return self.low == self.high

    def to_dict(self) -> dict:
        """{"low", "high", "ratio"} as plain floats, for the gallery settings or JSON."""
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "DecisionRule":
        """The rule saved by to_dict; a missing key takes its default, an unknown one is refused."""
        unknown = set(values) - {"low", "high", "ratio"}
        if unknown:
            raise ValueError(f"unknown decision rule field(s): {', '.join(sorted(unknown))}")
        try:
            return cls(**{k: float(v) for k, v in values.items()})
        except TypeError as exc:  # a None or a list where a number belongs
            raise ValueError(f"decision rule values must be numbers: {values}") from exc

    def accepts(self, nearest: np.ndarray, score: np.ndarray) -> np.ndarray:
        """Known or not, elementwise, from the nearest person's distance and the score d1 / d2."""
        nearest, score = np.asarray(nearest, dtype=np.float64), np.asarray(score, dtype=np.float64)
        return (nearest <= self.low) | ((nearest <= self.high) & (score <= self.ratio))

    def decide(self, distances: np.ndarray, labels: "Sequence[str] | PersonCodes") -> "Decisions":
        """Decide for each query from its (M, N) distances to N enrolled samples and their
        labels (or the PersonCodes of those labels, which a Matcher keeps to save the work)."""
        people = nearest_people(distances, labels)
        known = self.accepts(people.distance, people.score) & np.isfinite(people.distance)
        return Decisions(people.names, people.distance, people.score, known)

    def describe(self) -> str:
        """One line for reports: the plain threshold, or the three numbers in words."""
        if self.is_threshold:
            return f"threshold {self.low:.3f}"
        return (f"rule: known at distance <= {self.low:.3f}, or <= {self.high:.3f} when the ratio "
                f"(distance / next person's distance) <= {self.ratio:.3f}")


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
