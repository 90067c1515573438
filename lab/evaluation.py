"""`facebot eval`: embed a labelled tree once, run every protocol, print a table or JSON."""
from __future__ import annotations

import json
import time

ORIGINAL = {"siamese (original, same people)": (0.649, 0.759, 0.892), "facenet (original, same people)": (0.963, 0.987, 0.992)}


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
    threshold = args.threshold if args.threshold is not None else recognizer.default_threshold
    report = evaluate(data, threshold, seed=args.seed, trials=args.trials, repeats=args.repeats)
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


def format_report(r: dict) -> str:
    """The human-readable table printed by `facebot eval`."""
    pct = lambda v: f"{100 * v:6.2f}%"  # noqa: E731
    model = "facenet distance" if r.get("model", "facenet") == "facenet" else r["model"]
    lines = [
        f"{r['identities']} identities, {r['images']} images, detector {r['detector']}, "
        f"{r['detection_failures']} detection failure(s), {r['seconds']} s",
        f"one-shot rank-1 over all identities ({r['repeats']} draws): {pct(r['rank1'])}",
        "",
        f"N-way one-shot ({r['trials']} trials)      20-way    10-way     4-way",
        f"{f'this run ({model})':<32}" + "".join(f"{pct(r['n_way'][n]):>10}" for n in ("20", "10", "4")),
    ]
    for label, values in ORIGINAL.items():
        lines.append(f"{label:<32}" + "".join(f"{pct(v):>10}" for v in values))
    lines += [
        "",
        f"open set at threshold {r['threshold']:.3f} (30% of identities held out as strangers):",
        f"  false-accept rate {pct(r['false_accept_rate'])}   true-accept rate {pct(r['true_accept_rate'])}",
        f"  image pairs: false-accept {pct(r['pair_false_accept_rate'])}, true-accept {pct(r['pair_true_accept_rate'])};"
        f" threshold at pair FAR 0.01%: {r['calibrated_threshold']:.3f}",
    ]
    if r.get("trained_on_identities"):
        lines.append(f"  warning: the {model} model was trained on {r['trained_on_identities']} of these identities; "
                     "its figures are optimistic")
    failures = r.get("failures", [])
    for f in failures[:10]:
        lines.append(f"  no face: {f['image']} ({f['reason']})")
    if len(failures) > 10:
        lines.append(f"  ... and {len(failures) - 10} more (all of them in --json)")
    return "\n".join(lines)
