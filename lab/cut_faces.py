"""Choose how much of an enrollment face the photo's edge may cut (service.MIN_ENROLL_VISIBLE)
on Georgia Tech alone.

    python -m facebot.lab.cut_faces --data ../shared/datasets/georgia_tech/faces [--check ../shared/datasets/lfw_subset]

HR enrolls from the photo at hand: a careless crop, or a group photo where the person stands
at the side, can leave part of the face outside. Each Georgia Tech photo is cropped so that
the photo's edge (one side, drawn at random) cuts off 10, 20, 30 or 40% of the face, the
rest of the scene kept. Every version whose face is still found is a possible sample; its
`visible` share (DetectedFace.visible: the share of the face's box inside the photo, as
MTCNN estimates the whole face) puts it in a band. For each band, each member of the 29
people outside the background cohort is enrolled from one version in that band and probed
with their other photos, whole, as in `facebot eval`; ten open-set draws, 30% of people
strangers.

The choice, as for the size of an enrollment face (lab/small_faces.py,
last_band_within): the bands are read from the whole faces down, and the line is the lower
edge of the last band whose true-accept rate stays within 2 points of whole faces'. --check
folders (e.g. the LFW subset) chose nothing: the same table is printed for them.
"""
from __future__ import annotations

import sys

import numpy as np

CUTS = (0.0, 0.1, 0.2, 0.3, 0.4)
BANDS = (1.0, 0.95, 0.9, 0.875, 0.85, 0.8, 0.75, 0.0)  # visible share, from whole faces down
DRAWS = 10


def cut_by_edge(rgb: np.ndarray, box: tuple[int, int, int, int], cut: float, side: int) -> np.ndarray:
    """A photo the size of `rgb` whose edge `side` (0 left, 1 right, 2 top, 3 bottom) cuts
    off `cut` of the face in `box`; the scene around continues (mirrored past the photo's own
    edges) so that only the face's position changes."""
    import cv2

    x, y, w, h = box
    height, width = rgb.shape[:2]
    pad = 2 * max(width, height)
    scene = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    x, y = x + pad, y + pad
    left = {0: x + cut * w, 1: x + (1 - cut) * w - width}.get(side, x + w / 2 - width / 2)
    top = {2: y + cut * h, 3: y + (1 - cut) * h - height}.get(side, y + h / 2 - height / 2)
    left, top = int(round(left)), int(round(top))
    return np.ascontiguousarray(scene[top : top + height, left : left + width])


def cut_samples(data, recognizer, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For every photo of an EmbeddedSet and every cut of CUTS: the biggest face's embedding
    (photos, cuts, D) and its visible share (photos, cuts; nan where no face was found)."""
    from facebot.recognition import load_image

    rng = np.random.default_rng(seed)
    embeddings = np.zeros((len(data.paths), len(CUTS), data.embeddings.shape[1]), np.float32)
    visible = np.full((len(data.paths), len(CUTS)), np.nan)
    for i, path in enumerate(data.paths):
        rgb = load_image(path)
        whole = recognizer.faces(rgb)
        side = int(rng.integers(4))
        for k, cut in enumerate(CUTS):
            faces = recognizer.faces(cut_by_edge(rgb, whole[0].box, cut, side)) if cut else whole
            if faces:
                embeddings[i, k], visible[i, k] = faces[0].embedding, faces[0].visible
    return embeddings, visible


def band_rates(data, embeddings: np.ndarray, visible: np.ndarray, people: np.ndarray, low: float, high: float):
    """(FAR, TAR, samples in the band) of the default rule, members enrolled from a version
    whose visible share lies in [low, high) (high 1.0: whole faces included)."""
    from facebot.lab.small_faces import enrolled_from, mean_rates
    from facebot.recognition.decision import DecisionRule

    in_band = (visible >= low) & ((visible < high) | (high >= 1.0))
    photo, cut = np.nonzero(in_band)  # candidate samples: photo `photo` cut as CUTS[cut]
    far, tar = mean_rates(DecisionRule(), [enrolled_from(data, people, data.labels[photo], photo, embeddings[photo, cut], seed)
                                           for seed in range(DRAWS)])
    return far, tar, int(in_band.sum())


def table(data, recognizer, people: np.ndarray) -> list[tuple[float, float, float, float, int]]:
    """(low, high, FAR, TAR, samples) for every band of BANDS."""
    embeddings, visible = cut_samples(data, recognizer)
    return [(low, high, *band_rates(data, embeddings, visible, people, low, high)) for high, low in zip(BANDS, BANDS[1:])]


def main(argv: list[str] | None = None) -> int:
    from facebot.lab.defaults import derivation_arguments
    from facebot.lab.small_faces import last_band_within

    args, recognizer = derivation_arguments("cut_faces", __doc__, "folders to report the bands on", argv)
    from facebot.recognition.decision import COHORT_IDENTITIES
    from facebot.recognition.evaluate import embed_tree

    def show(label: str, rows) -> None:
        for low, high, far, tar, count in rows:
            print(f"{label}: enrolled from a face {low:.1%}-{high:.1%} inside the photo ({count} versions): "
                  f"FAR {far:.2%} TAR {tar:.2%}")

    data = embed_tree(args.data, recognizer)
    rows = table(data, recognizer, np.array([i for i, n in enumerate(data.identities) if n not in COHORT_IDENTITIES]))
    show(args.data, rows)
    print(f"chosen: refuse an enrollment face less than {last_band_within(rows):.1%} inside the photo")
    for folder in args.check:
        other = embed_tree(folder, recognizer)
        show(folder, table(other, recognizer, np.arange(len(other.identities))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
