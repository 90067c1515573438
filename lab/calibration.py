"""`facebot calibrate DIR [DIR ...]`: choose the decision rule on the user's labelled folders.

Each DIR/IDENTITY/*.jpg tree is embedded once; recognition.evaluate.calibrate_rule then picks
the rule that keeps the open-set false-accept rate at most `far` on every folder while
maximising the worst true-accept rate, and then the background test (cohort_ratio) that
keeps the false-accept rate of small galleries (1, 2, 3 and 5 people enrolled) at most
`small_far`. The figures are in-sample (measured on the folders the rule was chosen on):
the honest check is `facebot eval` on a folder left out.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from facebot.recognition.decision import DEFAULT_RULE, DecisionRule


def run_calibrate(dirs: list[str | Path], far: float, recognizer,
                  progress: Callable[..., Iterable] = lambda it, **kw: it,
                  small_far: float = 0.002) -> tuple[DecisionRule, list[dict]]:
    """Embed each DIR, fit a rule on all of them, and return (rule, one row per DIR).

    `progress(iterable, total=, desc=)` wraps each folder's images (tqdm-like). Each row:
    {"dir", "identities", "images", "detection_failures", "false_accept_rate",
    "true_accept_rate" (the fitted rule's open set, in-sample), "small_false_accept_rate",
    "small_true_accept_rate" (its worst small gallery; absent when the rule has no
    background test), "default_false_accept_rate", "default_true_accept_rate" (DEFAULT_RULE's
    open set, for comparison), "default_small_false_accept_rate" (DEFAULT_RULE's worst small
    gallery; absent for a folder of two identities)}.
    Raises FileNotFoundError for a missing DIR and ValueError when a DIR has fewer than two
    identities with faces, the recognizer compares faces with another metric than FaceNet's
    (a Siamese model keeps its threshold), or no rule meets `far`.
    """
    from facebot.recognition.evaluate import calibrate_rule, embed_tree, list_tree, open_set, small_galleries

    if recognizer.metric is not None:
        raise ValueError("calibrate fits FaceNet distances; the Siamese model keeps its own threshold")
    sets = []
    for folder in dirs:
        total = len(list_tree(folder))
        data = embed_tree(folder, recognizer, progress=lambda it, f=folder, n=total: progress(it, total=n, desc=f"embedding {Path(f).name}"))
        if len(set(data.labels.tolist())) < 2:
            raise ValueError(f"{folder}: need at least two identities with faces")
        sets.append(data)
    rule, expected = calibrate_rule(sets, far=far, small_far=small_far)
    rows = []
    for folder, data, fitted in zip(dirs, sets, expected):
        default = open_set(data, DEFAULT_RULE)
        row = {"dir": str(folder), "identities": len(data.identities), "images": data.images,
               "detection_failures": len(data.failures), **fitted,
               "default_false_accept_rate": default["false_accept_rate"],
               "default_true_accept_rate": default["true_accept_rate"]}
        small = small_galleries(data, DEFAULT_RULE)
        if small:
            row["default_small_false_accept_rate"] = max(r["false_accept_rate"] for r in small.values())
        rows.append(row)
    return rule, rows


def format_calibration(rule: DecisionRule, rows: list[dict], far: float) -> str:
    """The table `facebot calibrate` prints: the rule, then each folder's rates, fitted and default."""
    pct = lambda v: f"{100 * v:6.2f}%"  # noqa: E731
    na = lambda r, k: pct(r[k]) if k in r else "    -  "  # noqa: E731
    lines = [f"rule for open-set false-accept <= {100 * far:.2f}% on every folder: "
             f"low {rule.low:.2f}, high {rule.high:.2f}, ratio {rule.ratio:.2f}, cohort ratio {rule.cohort_ratio:.2f}",
             f"  {rule.describe()}",
             "",
             f"{'folder':<40}{'people':>7}{'images':>7}{'FAR':>9}{'TAR':>9}{'small FAR':>10}"
             "   default FAR / TAR / small FAR"]
    for r in rows:
        name = r["dir"] if len(r["dir"]) <= 38 else "..." + r["dir"][-35:]
        lines.append(f"{name:<40}{r['identities']:>7}{r['images']:>7}{pct(r['false_accept_rate']):>9}"
                     f"{pct(r['true_accept_rate']):>9}{na(r, 'small_false_accept_rate'):>10}   "
                     f"{pct(r['default_false_accept_rate'])} / {pct(r['default_true_accept_rate'])} / "
                     f"{na(r, 'default_small_false_accept_rate')}")
    lines.append("(small FAR: the worst false-accept rate with 1, 2, 3 or 5 people enrolled and everyone else a stranger)")
    lines.append("(in-sample: measured on the folders the rule was chosen on; check it with `facebot eval` on another)")
    return "\n".join(lines)
