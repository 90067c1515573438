"""Choose the decision rule's small-face slack (recognition/decision.py) on Georgia Tech alone.

    python -m facebot.lab.small_faces --data ../shared/datasets/georgia_tech/faces [--check ../shared/datasets/lfw_subset]

Real photos show faces smaller, blurrier and worse lit than the lab's. Each Georgia Tech
photo is degraded twice, as a phone, press or video photo would be (`degrade`: shrunk so
the face is 28-140 px wide, relit, maybe blurred, noised, JPEG-compressed), and the
degraded photos are probed against one clean photo per enrolled person (HR enrolls from a
decent photo). Only the 29 people outside the background cohort take part, so the
background test sees nobody it knows. Ten open-set draws, 30% of people strangers.

Every (small_face, small_slack) of the grid is scored with the default low, high, ratio
and cohort_ratio. The choice: open-set false-accept rate at most 0.5%, then the smallest
slack and then the smallest size whose true-accept rate is within 0.1 point of the best
(so that no single probe decides). --check folders (e.g. the LFW subset) chose nothing:
their photos are degraded the same way (faces 28-64 px) and reported with the chosen
slack and without.

It also prints what a small face makes as a sample, for the narrowest face an enrollment
takes (service.MIN_ENROLL_FACE): each member enrolled from one degraded photo whose face
width lies in a band, probed with the clean photos; and where the 2-point line that
lab/cut_faces.py draws for faces cut by the photo's edge (last_band_within) would fall.
The size gate is looser than that line on purpose: service.py says why.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

SIZES = (32, 40, 48, 56, 64, 72, 80)
SLACKS = (0.0, 0.05, 0.10, 0.15, 0.20)
OPEN_FAR = 0.005
TAR_TOLERANCE = 0.001
DRAWS = 10
STRANGERS = 0.3
# The cut-face gate (service.MIN_ENROLL_VISIBLE, lab/cut_faces.py) refuses the samples that
# name their owner more than TAR_LOSS less often than the best-made ones: last_band_within.
TAR_LOSS = 0.02
ENROLL_SIZES = (10_000, 96, 80, 72, 64, 56, 48, 40, 0)  # px, bands from the biggest faces down


def degrade(rgb: np.ndarray, face_width: float, rng: np.random.Generator,
            smallest: float = 28, largest: float = 140) -> np.ndarray:
    """The photo as a worse camera would give it: shrunk so its face is between `smallest`
    and `largest` px wide (log-uniform), gamma, contrast, brightness and colour changed,
    blurred a third of the time, noised, and JPEG-compressed at quality 30-90."""
    import cv2

    scale = float(np.exp(rng.uniform(np.log(smallest), np.log(largest)))) / face_width
    if scale < 1:
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    x = (rgb.astype(np.float32) / 255) ** rng.uniform(0.6, 1.7)
    x = (x - 0.5) * rng.uniform(0.6, 1.15) + 0.5 + rng.uniform(-0.1, 0.1)
    x = x * rng.uniform(0.88, 1.12, 3)[None, None, :]
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.3))
    x = x + rng.normal(0, rng.uniform(0, 0.025), x.shape)
    out = np.clip(x * 255, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
    return cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@dataclass
class Probes:
    """Degraded photos: embedding, face width (px), person (index) and source photo (index)."""

    embeddings: np.ndarray
    widths: np.ndarray
    person: np.ndarray
    source: np.ndarray


def degraded_probes(data, recognizer, copies: int = 2, seed: int = 0, **sizes) -> Probes:
    """`copies` degraded versions of every photo of an EmbeddedSet (its biggest face each;
    copies where no face is found any more are left out)."""
    from facebot.recognition import load_image

    rng = np.random.default_rng(seed)
    rows, widths, person, source = [], [], [], []
    for index, path in enumerate(data.paths):
        rgb = load_image(path)
        for _ in range(copies):
            faces = recognizer.faces(degrade(rgb, data.widths[index], rng, **sizes))
            if faces:
                rows.append(faces[0].embedding)
                widths.append(faces[0].pixels)
                person.append(data.labels[index])
                source.append(index)
    return Probes(np.stack(rows).astype(np.float32), np.asarray(widths), np.asarray(person), np.asarray(source))


def _strangers(people: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, set]:
    """The people in a random order, and the first STRANGERS of them, held out as strangers."""
    order = rng.permutation(people)
    return order, set(order[: max(1, round(len(people) * STRANGERS))].tolist())


def _judged(labels: list[str], enrolled: np.ndarray, queries: np.ndarray, person: np.ndarray, widths: np.ndarray,
            strangers: set):
    """The columns a rule is judged on, for `queries` (their person and face width) against
    the `enrolled` embeddings labelled `labels`: (nearest distance, score, background,
    width, genuine, correct)."""
    from facebot.recognition.decision import default_cohort, nearest_people
    from facebot.recognition.match import Matcher

    found = nearest_people(Matcher(labels, enrolled, cohort=None).distances(queries), labels)
    names = np.array([int(n) for n in found.names])
    genuine = np.array([p not in strangers for p in person])
    return found.distance, found.score, default_cohort().nearest(queries), widths, genuine, genuine & (names == person)


def draws(gallery, probes: Probes, people: np.ndarray, seed: int):
    """One open-set draw: the `_judged` columns for every probe of a member (not from their
    enrolled photo) and of a stranger."""
    rng = np.random.default_rng(seed)
    order, strangers = _strangers(people, rng)
    enrolled = {int(p): int(rng.choice(np.flatnonzero(gallery.labels == p))) for p in order if p not in strangers}
    keep = np.array([p in strangers or (p in enrolled and s != enrolled[p]) for p, s in zip(probes.person, probes.source)])
    return _judged([str(p) for p in enrolled], gallery.embeddings[list(enrolled.values())], probes.embeddings[keep],
                   probes.person[keep], probes.widths[keep], strangers)


def enrolled_from(gallery, people: np.ndarray, person: np.ndarray, source: np.ndarray, embeddings: np.ndarray,
                  seed: int):
    """The reverse draw: each member enrolled from one candidate sample of theirs (candidate
    i: `embeddings[i]`, of person `person[i]`, made from gallery photo `source[i]`; members
    without one are left out), probed with their clean gallery photos other than that
    source, strangers with all theirs; the `_judged` columns (None: no member has a
    candidate)."""
    rng = np.random.default_rng(seed)
    order, strangers = _strangers(people, rng)
    enrolled = {}
    for p in order:
        rows = np.flatnonzero(person == p)
        if p not in strangers and len(rows):
            enrolled[int(p)] = int(rng.choice(rows))
    if not enrolled:
        return None
    keep = np.array([p in strangers or (p in enrolled and i != source[enrolled[p]])
                     for i, p in enumerate(gallery.labels)])
    return _judged([str(p) for p in enrolled], embeddings[list(enrolled.values())], gallery.embeddings[keep],
                   gallery.labels[keep], gallery.widths[keep], strangers)


def enrolled_small(gallery, probes: Probes, people: np.ndarray, low: float, high: float, seed: int):
    """enrolled_from the degraded photos whose face is `low` to `high` px wide."""
    band = (probes.widths >= low) & (probes.widths < high)
    return enrolled_from(gallery, people, probes.person[band], probes.source[band], probes.embeddings[band], seed)


def last_band_within(rows: list[tuple], loss: float = TAR_LOSS) -> float:
    """An enrollment gate's line: `rows` are (low, high, FAR, TAR, samples) bands read from
    the best-made samples down; the line is the lower edge of the last band whose TAR stays
    within `loss` of the first band's (a better band below a worse one does not count)."""
    best, line = rows[0][3], rows[0][0]
    for low, _, _, tar, _ in rows:
        if not tar >= best - loss:
            break
        line = low
    return line


def size_bands(gallery, probes: Probes, people: np.ndarray, rule) -> list[tuple[float, float, float, float, int]]:
    """(low, high, FAR, TAR, samples) of `rule` for members enrolled from a degraded photo
    whose face width lies in each band of ENROLL_SIZES, probed with clean photos."""
    rows = []
    for high, low in zip(ENROLL_SIZES, ENROLL_SIZES[1:]):
        far, tar = mean_rates(rule, [enrolled_small(gallery, probes, people, low, high, seed) for seed in range(DRAWS)])
        rows.append((low, high, far, tar, int(((probes.widths >= low) & (probes.widths < high)).sum())))
    return rows


def rates(rule, draw) -> tuple[float, float]:
    """(FAR, TAR) of a rule over one draw."""
    nearest, score, background, widths, genuine, correct = draw
    known = rule.accepts(nearest, score, background, widths)
    return float(known[~genuine].mean()), float((known & correct)[genuine].mean())


def mean_rates(rule, all_draws) -> tuple[float, float]:
    """(FAR, TAR) averaged over draws, each draw counting equally (None draws left out;
    nan where none is left)."""
    results = [rates(rule, d) for d in all_draws if d is not None]
    return tuple(np.mean(results, axis=0)) if results else (np.nan, np.nan)


def choose(all_draws, base) -> tuple:
    """(small_face, small_slack) by the procedure of the module's docstring, and the grid
    {(size, slack): (FAR, TAR)}."""
    grid = {(size, slack): mean_rates(replace(base, small_face=float(size), small_slack=float(slack)), all_draws)
            for size in SIZES for slack in SLACKS}
    valid = {k: v for k, v in grid.items() if v[0] <= OPEN_FAR + 1e-12}
    best = max(tar for _, tar in valid.values())
    size, slack = min((k for k, (_, tar) in valid.items() if tar >= best - TAR_TOLERANCE), key=lambda k: (k[1], k[0]))
    return size, slack, grid


def main(argv: list[str] | None = None) -> int:
    from facebot.lab.defaults import derivation_arguments

    args, recognizer = derivation_arguments("small_faces", __doc__, "folders to report the chosen slack on "
                                            "(degraded alike)", argv)
    from facebot.recognition.decision import COHORT_IDENTITIES, DecisionRule
    from facebot.recognition.evaluate import embed_tree
    from facebot.service import MIN_ENROLL_FACE

    base = DecisionRule()
    gallery = embed_tree(args.data, recognizer)
    people = np.array([i for i, name in enumerate(gallery.identities) if name not in COHORT_IDENTITIES])
    probes = degraded_probes(gallery, recognizer)
    all_draws = [draws(gallery, probes, people, seed) for seed in range(DRAWS)]
    size, slack, grid = choose(all_draws, base)
    print(f"{len(probes.widths)} degraded probes, face widths 5/50/95%: "
          f"{', '.join(f'{w:.0f}' for w in np.percentile(probes.widths, [5, 50, 95]))} px")
    nearest, _, _, widths, genuine, _ = (np.concatenate(column) for column in zip(*all_draws))
    for low, high in ((0, 40), (40, 64), (64, 80), (80, 10_000)):
        band = (widths >= low) & (widths < high)
        print(f"  faces {low}-{high} px: owners beyond {base.high:.2f} {np.mean(nearest[band & genuine] > base.high):.1%}, "
              f"strangers' mean distance to the nearest enrolled person {nearest[band & ~genuine].mean():.2f}")
    for s in SIZES:
        print(f"  under {s:2d} px: " + "  ".join(f"+{k:.2f} {grid[(s, k)][0]:.2%}/{grid[(s, k)][1]:.2%}" for k in SLACKS))
    print(f"chosen: small_face {size}, small_slack {slack:.2f} (FAR/TAR {grid[(size, slack)][0]:.2%}/{grid[(size, slack)][1]:.2%}; "
          f"no slack {grid[(size, 0.0)][0]:.2%}/{grid[(size, 0.0)][1]:.2%})")
    chosen = replace(base, small_face=float(size), small_slack=float(slack))
    # What a small face makes as a sample (service.MIN_ENROLL_FACE): enrolled from one
    # degraded photo, probed with clean ones.
    rows = size_bands(gallery, probes, people, chosen)
    for low, high, far, tar, count in rows:
        print(f"  enrolled from a {low}-{high} px face ({count} photos), clean probes: FAR {far:.2%} TAR {tar:.2%}")
    print(f"the cut-face gate's criterion (within {TAR_LOSS:.0%} of the biggest faces) would refuse faces under "
          f"{last_band_within(rows):.0f} px; the size gate (service.MIN_ENROLL_FACE) is {MIN_ENROLL_FACE} px")
    for folder in args.check:
        data = embed_tree(folder, recognizer)
        shrunk = degraded_probes(data, recognizer, seed=1, smallest=28, largest=64)
        everyone = np.arange(len(data.identities))
        checked = [draws(data, shrunk, everyone, seed) for seed in range(DRAWS)]
        for label, rule in (("chosen", chosen), ("no slack", replace(base, small_slack=0.0))):
            far, tar = mean_rates(rule, checked)
            print(f"{folder}, degraded to 28-64 px faces, {label}: FAR {far:.2%} TAR {tar:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
