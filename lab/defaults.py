"""Re-derive FaceNet's default decision rule (recognition/decision.py) from Georgia Tech alone.

    python -m facebot.lab.defaults --data ../shared/datasets/georgia_tech/faces [--check DIR ...]

1. low, high and ratio: recognition.evaluate.calibrate_rule on all 50 people, open-set
   false-accept rate at most 0.5%, no background test.
2. cohort_ratio: with those fixed, on the 21 people of the shipped background cohort alone
   (small galleries of 1, 2, 3 and 5 people; each probe's own person and the enrolled ones
   are left out of its background), false-accept rate at most 0.2%.

It prints the rule, then `facebot eval`'s open-set figures for each --check folder (e.g.
the LFW subset): folders that chose nothing. The cohort itself is built by lab/cohort.py.
"""
from __future__ import annotations

import argparse
import os
import sys

SMALL_FAR = 0.002
OPEN_FAR = 0.005


def derive_rule(data):
    """The default rule for an EmbeddedSet of Georgia Tech (all 50 people), as described above."""
    from facebot.recognition.decision import COHORT_IDENTITIES
    from facebot.recognition.evaluate import (CALIBRATION_COHORT_RATIOS, SMALL_GALLERIES, SMALL_GALLERY_DRAWS,
                                              _fit_cohort_ratio, calibrate_rule, small_gallery_draws,
                                              without_identities)

    rule, _ = calibrate_rule([data], far=OPEN_FAR, cohort=None)
    cohort_people = without_identities(data, [n for n in data.identities if n not in COHORT_IDENTITIES])
    draws = [small_gallery_draws(cohort_people, k, SMALL_GALLERY_DRAWS, 0) for k in SMALL_GALLERIES]
    return _fit_cohort_ratio(rule, draws, SMALL_FAR, CALIBRATION_COHORT_RATIOS)


def derivation_arguments(module: str, doc: str, check_help: str, argv: list[str] | None):
    """The command line of a lab module that derives a default on Georgia Tech (`--data`)
    and reports it on other folders (`--check`), and the Recognizer defaults are derived
    with (float FaceNet, DERIVED_ON_EMBEDDER)."""
    parser = argparse.ArgumentParser(prog=f"python -m facebot.lab.{module}", description=doc.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the Georgia Tech faces tree (DIR/sN/*.jpg)")
    parser.add_argument("--check", nargs="*", default=[], help=check_help)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from facebot.recognition import Recognizer
    from facebot.recognition.decision import DERIVED_ON_EMBEDDER

    return args, Recognizer(embedder=DERIVED_ON_EMBEDDER)


def main(argv: list[str] | None = None) -> int:
    args, recognizer = derivation_arguments("defaults", __doc__, "folders to report the derived rule on", argv)
    from facebot.recognition.evaluate import embed_tree, evaluate

    rule = derive_rule(embed_tree(args.data, recognizer))
    print(f"low {rule.low:.2f}, high {rule.high:.2f}, ratio {rule.ratio:.2f}, cohort ratio {rule.cohort_ratio:.2f}")
    for folder in args.check:
        report = evaluate(embed_tree(folder, recognizer), rule)
        print(f"{folder}: rank-1 {report['rank1']:.2%}, open set FAR {report['false_accept_rate']:.2%} "
              f"TAR {report['true_accept_rate']:.2%} ({report['open_set_identities']} identities)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
