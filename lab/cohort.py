"""Build the background cohort the decision rule compares faces with (recognition/decision.py).

The cohort is one row per background person: the L2-normalised mean FaceNet embedding of
that person's photos. It holds embeddings only, never photos, and none of its people may be
enrolled or used to report figures (they would meet themselves in the background).

The shipped file, models/weights/cohort-gt.npy, was made with::

    python -m facebot.lab.cohort --data ../shared/datasets/georgia_tech/faces \\
        --people s1..s25 --exclude s2,s5,s11,s23 --out models/weights/cohort-gt.npy

that is 21 Georgia Tech people (s1-s25 without the four whose photos ship as the demo's
samples), 15 photos each; the command prints the SHA-256 and identity tuple that
recognition/decision.py pins (COHORT_SHA256, COHORT_IDENTITIES).
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import numpy as np


def parse_people(spec: str) -> list[str]:
    """'s1..s3,s7' -> ['s1', 's2', 's3', 's7']: names, and ranges PREFIXa..PREFIXb of numbered ones."""
    names: list[str] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        match = re.fullmatch(r"(\D*)(\d+)\.\.(\D*)(\d+)", part)
        if match:
            prefix, first, prefix2, last = match.groups()
            if prefix != prefix2 or int(last) < int(first):
                raise ValueError(f"bad range {part!r}: want e.g. s1..s25")
            names += [f"{prefix}{i}" for i in range(int(first), int(last) + 1)]
        else:
            names.append(part)
    if len(set(names)) != len(names):
        raise ValueError(f"a person is named twice in {spec!r}")
    return names


def build_cohort(data, people: list[str]) -> np.ndarray:
    """(len(people), D) float32: each person's L2-normalised mean embedding, in `people` order.

    `data` is an EmbeddedSet (recognition/evaluate.py); every person must have a face in it.
    """
    rows = []
    for name in people:
        if name not in data.identities:
            raise ValueError(f"{name} has no face in the data")
        mean = data.embeddings[data.labels == data.identities.index(name)].astype(np.float64).mean(axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.stack(rows).astype(np.float32)


def write_cohort(matrix: np.ndarray, out: str | Path) -> str:
    """Save the matrix as .npy and return the file's SHA-256."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, np.ascontiguousarray(matrix, dtype=np.float32), allow_pickle=False)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facebot.lab.cohort", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="labelled tree DIR/IDENTITY/*.jpg")
    parser.add_argument("--people", required=True, help="who builds the cohort, e.g. s1..s25")
    parser.add_argument("--exclude", default="", help="people to leave out of --people, e.g. s2,s5")
    parser.add_argument("--out", required=True, help="the .npy file to write")
    parser.add_argument("--detector", default="mtcnn")
    args = parser.parse_args(argv)

    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from facebot.recognition import Recognizer
    from facebot.recognition.decision import DERIVED_ON_EMBEDDER
    from facebot.recognition.evaluate import embed_tree

    excluded = set(parse_people(args.exclude)) if args.exclude else set()
    people = [p for p in parse_people(args.people) if p not in excluded]
    data = embed_tree(args.data, Recognizer(detector=args.detector, embedder=DERIVED_ON_EMBEDDER), identities=people)
    for path, reason in data.failures:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    matrix = build_cohort(data, people)
    digest = write_cohort(matrix, args.out)
    counts = {name: int(np.sum(data.labels == data.identities.index(name))) for name in people}
    print(f"wrote {args.out}: {len(people)} people x {matrix.shape[1]} dims from {sum(counts.values())} photos")
    print(f'COHORT_SHA256 = "{digest}"')
    print(f"COHORT_IDENTITIES = {tuple(people)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
