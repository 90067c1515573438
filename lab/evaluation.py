"""`facebot eval`: embed a labelled tree once, run every protocol, print a table or JSON."""
from __future__ import annotations

import json
import time

from facebot.lab.original import ORIGINAL_N_WAY, ORIGINAL_WAYS
from facebot.recognition.decision import DEFAULT_RULE, DecisionRule, as_rule


def choose_rule(args, recognizer):
    """The rule `facebot eval` measures: --threshold if given (a plain threshold), else
    `args.rule` if the caller set one (a DecisionRule or its dict, e.g. the gallery's saved
    rule), else the default of the way faces are compared. A Siamese model keeps a plain
    threshold (a rule fitted on FaceNet distances does not apply to its scale)."""
    fallback = DEFAULT_RULE if recognizer.metric is None else DecisionRule.from_threshold(recognizer.default_threshold)
    if args.threshold is not None:
        return DecisionRule.from_threshold(args.threshold)
    rule = getattr(args, "rule", None)
    rule = DecisionRule.from_dict(rule) if isinstance(rule, dict) else as_rule(rule, fallback)
    return rule if recognizer.metric is None or rule.is_threshold else fallback


def run_eval(args, progress) -> int:
    import facebot.recognition as recognition
    from facebot.recognition.evaluate import embed_tree, evaluate, list_tree

    try:
        total = len(list_tree(args.dir))
    except FileNotFoundError as exc:
        print(f"facebot: {exc}")
        return 1
    started = time.monotonic()
    recognizer = recognition.Recognizer(detector=args.detector, model=args.model)
    data = embed_tree(args.dir, recognizer, progress=lambda it: progress(it, total=total, desc="embedding"))
    if len(data.identities) < 2 or len(data.paths) < 3:
        print("facebot: need at least two identities with faces to evaluate")
        return 1
    report = evaluate(data, choose_rule(args, recognizer), seed=args.seed, trials=args.trials, repeats=args.repeats,
                      shots=args.shots)
    report["detector"] = args.detector
    report["model"] = recognizer.scorer.name
    # A network scored on people it trained on reports an optimistic figure: say so.
    seen = sorted(set(recognizer.scorer.meta.get("trained_on", [])) & set(data.identities)) if report["model"] != "facenet" else []
    report["trained_on_identities"] = len(seen)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["failures"] = [{"image": p, "reason": r} for p, r in data.failures]
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0


def enrolled_photos(shots: int) -> str:
    """'one photo enrolled', 'K photos enrolled': how many samples each member had."""
    return "one photo enrolled" if shots == 1 else f"{shots} photos enrolled"


def format_report(r: dict) -> str:
    """The human-readable table printed by `facebot eval`."""
    pct = lambda v: f"{100 * v:6.2f}%"  # noqa: E731
    model = "facenet distance" if r.get("model", "facenet") == "facenet" else r["model"]
    columns = [str(n) for n in ORIGINAL_WAYS if str(n) in r["n_way"]]  # only N-way with at least N identities
    rule = DecisionRule.from_dict(r["rule"]) if r.get("rule") else DecisionRule.from_threshold(r["threshold"])
    lines = [
        f"{r['identities']} identities, {r['images']} images, detector {r['detector']}, "
        f"{r['detection_failures']} detection failure(s), {r['seconds']} s",
        f"one-shot rank-1 over all identities ({r['repeats']} draws): {pct(r['rank1'])}",
        "",
    ]
    if columns:
        header = f"N-way one-shot ({r['trials']} trials)"
        lines.append(f"{header:<32}" + "".join(f"{n + '-way':>10}" for n in columns))
        lines.append(f"{f'this run ({model})':<32}" + "".join(f"{pct(r['n_way'][n]):>10}" for n in columns))
        for name, values in ORIGINAL_N_WAY.items():
            by_way = dict(zip(map(str, ORIGINAL_WAYS), values))
            lines.append(f"{name + ' (original)':<32}" + "".join(f"{pct(by_way[n]):>10}" for n in columns))
        lines.append("")
    overlap = r.get("cohort_overlap") or []
    lines += [
        f"open set, {r['repeats']} draws (30% of identities held out as strangers, {enrolled_photos(r.get('shots', 1))} per other person):",
        f"  {rule.describe()}",
    ]
    if overlap:  # the background cohort's own people would flatter the figures: they are left out
        lines.append(f"  on {r['open_set_identities']} identities: {len(overlap)} built the background cohort and are "
                     f"left out ({', '.join(overlap[:8])}{', ...' if len(overlap) > 8 else ''})")
    lines.append(f"  false-accept rate {pct(r['false_accept_rate'])}   true-accept rate {pct(r['true_accept_rate'])}")
    if spread := r.get("open_set_seeds"):
        span = lambda values: f"{100 * min(values):.2f}-{100 * max(values):.2f}%"  # noqa: E731
        lines.append(f"  over seeds {spread['seeds'][0]}-{spread['seeds'][-1]}: false-accept "
                     f"{span(spread['false_accept_rate'])}, true-accept {span(spread['true_accept_rate'])}")
    for size, rates in (r.get("small_galleries") or {}).items():
        lines.append(f"  {size} enrolled, every other person a stranger: false-accept {pct(rates['false_accept_rate'])}"
                     f"   true-accept {pct(rates['true_accept_rate'])}")
    lines.append(f"  image pairs within {r['threshold']:.3f}: false-accept {pct(r['pair_false_accept_rate'])}, "
                 f"true-accept {pct(r['pair_true_accept_rate'])}; threshold at pair FAR 0.01%: {r['calibrated_threshold']:.3f}")
    if r.get("trained_on_identities"):
        lines.append(f"  warning: the {model} model was trained on {r['trained_on_identities']} of these identities; "
                     "its figures are optimistic")
    failures = r.get("failures", [])
    for f in failures[:10]:
        lines.append(f"  no face: {f['image']} ({f['reason']})")
    if len(failures) > 10:
        lines.append(f"  ... and {len(failures) - 10} more (all of them in --json)")
    return "\n".join(lines)
