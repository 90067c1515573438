"""`facebot siamese train|eval`: the Siamese networks of the original project, rebuilt and
measured on people never seen in training.

This module is the glue: it finds the faces with `recognition` (MTCNN crop + FaceNet
embedding, computed once and cached as .npz outside the repository) and hands plain
arrays to `models.siamese`, which knows nothing of detection.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from importlib.resources import files
from pathlib import Path

from facebot.lab.original import ORIGINAL_N_WAY, ORIGINAL_WAYS

log = logging.getLogger("facebot.siamese")

# The weights shipped with the package (facebot/models/weights), read as package data.
WEIGHTS_DIR = Path(str(files("facebot.models") / "weights"))


def _progress(iterable, total=None, desc="", unit="photo"):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)


def default_cache_dir() -> Path:
    """Where face crops are cached: $FACEBOT_CACHE_DIR, else ~/.cache/facebot (never the repo)."""
    from facebot.models.facenet import cache_dir

    return cache_dir()


def load_faces(data_dir: str | Path, cache: str | Path | None = None, detector: str = "mtcnn"):
    """Return a models.siamese.FaceSet for DIR/IDENTITY/*.jpg: the biggest face of each photo
    as a 160x160 MTCNN crop with its FaceNet embedding.

    The first run detects and embeds every photo (about 100 s for the 750 Georgia Tech
    photos on 2 cores) and writes CACHE/siamese-faces-<hash>.npz; later runs read that file.
    Photos without a face are logged and left out.
    """
    import numpy as np

    from facebot.models.siamese.data import FaceSet, cache_key, load_faceset, save_faceset
    from facebot.recognition.evaluate import list_tree

    items = list_tree(data_dir)
    if not items:
        raise FileNotFoundError(f"no photos found in {data_dir}/NAME/ folders")
    cache_file = Path(cache or default_cache_dir()) / f"siamese-faces-{cache_key([p for _, p in items], detector)}.npz"
    if cache_file.is_file():
        log.info("faces read from %s", cache_file)
        return load_faceset(cache_file)

    from facebot.recognition import ImageError, Recognizer, load_image
    from facebot.recognition.align import SQUARE

    # the crop the Siamese networks read and are run on (Recognizer.crop with a Siamese model)
    recognizer = Recognizer(detector=detector, crop=SQUARE)
    identities = sorted({name for name, _ in items})
    labels, crops, embeddings, paths = [], [], [], []
    for name, path in _progress(items, total=len(items), desc="finding faces"):
        try:
            faces = recognizer.faces(load_image(path))
        except (ImageError, ValueError) as exc:
            log.warning("%s skipped: %s", path, exc)
            continue
        if not faces:
            log.warning("%s skipped: no face found", path)
            continue
        labels.append(identities.index(name))
        crops.append(faces[0].crop)
        embeddings.append(faces[0].embedding)
        paths.append(str(path))
    data = FaceSet(identities, np.asarray(labels, int), np.stack(crops), np.stack(embeddings).astype(np.float32), paths)
    save_faceset(data, cache_file)
    log.info("faces cached in %s", cache_file)
    return data


# -- per-kind training defaults ---------------------------------------------------------------
def default_configs(kind: str, seed: int = 0, epochs: int | None = None, minutes: float | None = None,
                    steps: int | None = None):
    """(NetConfig, TrainConfig) used by `facebot siamese train` and by eval's own training.

    The from-scratch kinds get a wider crop to shift a 105x105 window over, more dropout and
    weight decay (30 training people over-fit fast), a fixed number of epochs and a time
    budget that keeps the whole train + eval under 20 minutes on 2 cores; the FaceNet head trains in seconds but needs
    a larger step (differences of unit 512-d embeddings are small).
    """
    from facebot.models.siamese import TrainConfig, for_kind

    if kind == "facenet-head":
        net = for_kind(kind)
        train = TrainConfig(seed=seed, learning_rate=1e-2, weight_decay=0.0, steps_per_epoch=50, max_epochs=60,
                            patience=10)
    else:
        net = for_kind(kind, crop_size=121, dropout=0.3)
        train = TrainConfig(seed=seed, weight_decay=5e-4, max_epochs=35, patience=8, max_seconds=420.0)
        if kind == "scratch-triplet":
            # A fixed 15 epochs, keeping the last: on tuning splits inside the 35 training
            # people (20 fit / 5 val / 10 held out), choosing the epoch by the 5 validation
            # people's ranking accuracy kept epochs 2-4 and scored 10-way 67.8%, the last of
            # 15 epochs 73.3%. For the pair kind it made no difference (58.7 vs 56.5%).
            train = TrainConfig(**{**train.to_dict(), "max_epochs": 15, "patience": 15, "restore_best": False})
    overrides = {}
    if epochs is not None:
        overrides["max_epochs"] = epochs
    if minutes is not None:
        overrides["max_seconds"] = 60.0 * minutes
    if steps is not None:
        overrides["steps_per_epoch"] = steps
    return net, TrainConfig(**{**train.to_dict(), **overrides})


def train_kind(data, split, kind: str, out: Path, seed: int = 0, epochs: int | None = None,
               minutes: float | None = None, steps: int | None = None, plot: Path | None = None,
               command: str = ""):
    """Train one kind on the split's fit people (validating on its val people), save it to
    OUT with the split and history in its header, and draw its curves. Returns the net."""
    from facebot.models.siamese import SiameseNet, save_net, train
    from facebot.models.siamese.plot import training_curves

    net_config, train_config = default_configs(kind, seed, epochs, minutes, steps)
    net = SiameseNet(net_config, seed=seed)
    log.info("%s: %s parameters; training on %d people, validating on %d", kind, f"{net.count_params():,}",
             len(split.fit), len(split.val))
    started = time.monotonic()
    history = train(net, data.subset(split.fit), data.subset(split.val), train_config,
                    progress=lambda it, total, desc: _progress(it, total=total, desc=desc, unit="step"))
    meta = {"split": split.to_dict(), "trained_on": list(split.train), "train": train_config.to_dict(),
            "history": history.to_dict(), "seconds": round(time.monotonic() - started, 1),
            "params": net.count_params(), "command": command}
    meta["threshold"] = threshold_on_validation(net, data, split)
    save_net(net, out, meta)
    if plot:
        training_curves(history.to_dict(), f"{kind} (best epoch {history.best_epoch})", plot)
    return net, meta


def threshold_on_validation(net, data, split, false_accept_rate: float = 1e-3) -> dict:
    """The network's identification threshold, calibrated on the split's validation people
    (held out of the gradient, so their distances look like a stranger's would)."""
    from facebot.models.siamese import SiameseScorer
    from facebot.models.siamese.evaluate import calibrate

    val = data.subset(split.val)
    scorer = SiameseScorer(net)
    try:
        threshold = calibrate(scorer, val.crops if scorer.reads == "crop" else val.embeddings, val.labels,
                              false_accept_rate)
    except ValueError as exc:  # a tiny split: the model still trains, identification will ask for --threshold
        log.warning("%s: no threshold calibrated: %s", net.config.kind, exc)
        return {}
    log.info("%s: threshold %.4f (pair false-accept %.4f, true-accept %.3f on %d validation people)", net.config.kind,
             threshold["value"], threshold["false_accept_rate"], threshold["true_accept_rate"], len(split.val))
    return {**threshold, "people": list(split.val)}


# -- commands -----------------------------------------------------------------------------------
def cmd_calibrate(args) -> int:
    """Recompute and store the threshold of a trained network on its own validation people."""
    from facebot.models.siamese import Split, load_net, save_net

    path = Path(args.model_file)
    net, meta = load_net(path)
    meta.pop("digest", None)
    data = load_faces(args.data, args.cache, args.detector)
    meta["threshold"] = threshold_on_validation(net, data, Split.from_dict(meta["split"]), args.far)
    save_net(net, path, meta)
    t = meta["threshold"]
    print(f"{path}: threshold {t['value']} (pair false-accept {100 * t['false_accept_rate']:.2f}%, true-accept "
          f"{100 * t['true_accept_rate']:.1f}% over {t['pairs'][0]} + {t['pairs'][1]} pairs of validation people)")
    return 0


def cmd_train(args) -> int:
    from facebot.models.siamese import split_identities

    data = load_faces(args.data, args.cache, args.detector)
    split = split_identities(data.identities, test=args.test_people, val=args.val_people, seed=args.split_seed)
    out = Path(args.out)
    plot = Path(args.plot) if args.plot else out.with_name(out.stem + "-curves.png")
    command = "facebot siamese train " + " ".join(sys.argv[3:] if sys.argv[1:3] == ["siamese", "train"] else [])
    _, meta = train_kind(data, split, args.kind, out, seed=args.seed, epochs=args.epochs, minutes=args.minutes,
                         steps=args.steps, plot=plot, command=command.strip())
    h = meta["history"]
    best = h["epochs"][h["best_epoch"] - 1] if h["best_epoch"] else {}
    print(f"{args.kind}: {meta['params']:,} parameters, {len(h['epochs'])} epochs in {meta['seconds']} s "
          f"({h['stopped']}); best epoch {h['best_epoch']}: validation ranking accuracy "
          f"{best.get('val_ranking', float('nan')):.3f} on {len(split.val)} people not trained on")
    print(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB) and {plot}")
    print(f"{len(split.test)} test people never used: {', '.join(split.test)}")
    return 0


def trained_model(data, split, kind: str, weights: Path, cache: Path, train_missing: bool):
    """The scorer for `kind`: WEIGHTS/siamese-KIND.npz when it was trained only on the
    split's training people, else (when allowed) trained now and saved under CACHE.

    Raises RuntimeError when no usable model exists and training is not allowed: a model
    that saw a test person would report an optimistic, meaningless figure.
    """
    from facebot.models.siamese import SiameseScorer, load_net, read_header

    path = weights / f"siamese-{kind}.npz"
    if path.is_file():
        meta = read_header(path)["meta"]
        seen = set(meta.get("trained_on", [])) & set(split.test)
        if not seen:
            log.info("%s: loaded %s", kind, path)
            return SiameseScorer(*load_net(path)), str(path)
        log.warning("%s: %s was trained on %d of the test people; not used", kind, path, len(seen))
    if not train_missing:
        raise RuntimeError(f"no {kind} model trained without the test people in {weights}; "
                           "run `facebot siamese train` or drop --no-train")
    out = Path(cache) / f"siamese-{kind}-split{split.seed}.npz"
    net, meta = train_kind(data, split, kind, out, seed=split.seed, plot=out.with_name(out.stem + "-curves.png"))
    return SiameseScorer(net, meta), str(out)


WAYS = ORIGINAL_WAYS


def evaluate_split(data, split, scorers: dict, trials: int, seed: int) -> dict:
    """N-way one-shot accuracy and ROC of every scorer on the split's test people, all on
    the same seeded trials (recognition.evaluate.n_way_trials, seed + N as `facebot eval`)."""
    from facebot.models.siamese.evaluate import n_way_accuracy, pair_scores, roc_curve, similarity_matrix
    from facebot.recognition.evaluate import n_way_trials

    test = data.subset(split.test)
    draws = {n: n_way_trials(test.labels, n, trials, seed + n) for n in WAYS}
    models, curves = {}, {}
    for name, scorer in scorers.items():
        sim = similarity_matrix(scorer, test.crops if scorer.reads == "crop" else test.embeddings)
        models[name] = {str(n): n_way_accuracy(sim, draws[n]) for n in WAYS}
        curves[name] = roc_curve(*pair_scores(sim, test.labels))
    people = len(split.test)
    split_info = {**split.to_dict(), "train": list(split.train), "train_people": len(split.train),
                  "test_people": people, "test_images": len(test),
                  "ways": {str(n): min(n, people) for n in WAYS},
                  "note": f"20-way uses all {people} test people ({min(20, people)}-way)" if people < 20 else ""}
    return {"split": split_info, "trials": trials, "models": models,
            "auc": {name: c[2] for name, c in curves.items()}, "_curves": curves}


def format_table(report: dict) -> str:
    """The new table (unseen people) above the original project's (same people)."""
    pct = lambda v: f"{100 * v:6.1f}%"  # noqa: E731
    s = report["split"]
    ways = s["ways"]
    head = "".join(f"{f'{n}-way' + ('*' if ways[str(n)] != n else ''):>10}" for n in WAYS)
    lines = [f"split seed {s['seed']}: {s['train_people']} training people ({len(s['fit'])} fit + {len(s['val'])} "
             f"validation), {s['test_people']} test people never seen ({s['test_images']} photos); "
             f"{report['trials']} trials per column", "",
             f"{'unseen people (this run)':<34}{head}     AUC"]
    for name, acc in report["models"].items():
        lines.append(f"  {name:<32}" + "".join(f"{pct(acc[str(n)]):>10}" for n in WAYS) + f"   {report['auc'][name]:.3f}")
    lines += ["", f"{'original (2020, same people)':<34}" + "".join(f"{f'{n}-way':>10}" for n in WAYS)]
    lines += [f"  {name:<32}" + "".join(f"{pct(v):>10}" for v in values) for name, values in ORIGINAL_N_WAY.items()]
    if s["note"]:
        lines += ["", f"* {s['note']}."]
    return "\n".join(lines)


def cmd_eval(args) -> int:
    from facebot.models.siamese import KINDS, FaceNetScorer, split_identities
    from facebot.models.siamese.plot import roc_chart

    started = time.monotonic()
    data = load_faces(args.data, args.cache, args.detector)
    split = split_identities(data.identities, test=args.test_people, val=args.val_people, seed=args.split_seed)
    scorers, sources = {}, {}
    for kind in KINDS:
        scorers[kind], sources[kind] = trained_model(data, split, kind, Path(args.weights),
                                                     Path(args.cache or default_cache_dir()), not args.no_train)
    scorers["facenet"], sources["facenet"] = FaceNetScorer(), "pretrained FaceNet, L2 distance"
    report = evaluate_split(data, split, scorers, args.trials, args.seed)
    curves = report.pop("_curves")
    report["weights"] = sources
    report["seconds"] = round(time.monotonic() - started, 1)
    if args.roc:
        roc_chart(curves, f"ROC on {len(split.test)} unseen people (all pairs)", args.roc)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table(report))
        print(f"\nweights: " + "; ".join(f"{k}: {v}" for k, v in sources.items()))
        if args.roc:
            print(f"ROC curves: {args.roc}")
        print(f"{report['seconds']} s")
    return 0


# -- wiring -------------------------------------------------------------------------------------
def _common(p) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="DIR/IDENTITY/*.jpg photos")
    p.add_argument("--cache", metavar="DIR", help="where face crops are cached (default $FACEBOT_CACHE_DIR or ~/.cache/facebot)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the identity split (default 0)")
    p.add_argument("--test-people", type=int, default=15, help="people never seen in training (default 15)")
    p.add_argument("--val-people", type=int, default=5, help="training people kept for early stopping (default 5)")


def add_command(sub) -> None:
    """Register `facebot siamese train|eval` on the main parser's subparsers."""
    from facebot.models.siamese.networks import KINDS

    p = sub.add_parser("siamese", help="train and measure the Siamese networks on unseen people")
    ss = p.add_subparsers(dest="siamese_command", required=True, metavar="ACTION")

    t = ss.add_parser("train", help="train one Siamese network on the training people of a split")
    _common(t)
    t.add_argument("--kind", required=True, choices=KINDS, help="which network to train")
    t.add_argument("--out", required=True, metavar="PATH.npz", help="where to save the weights")
    t.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    t.add_argument("--epochs", type=int, help="most epochs (default: per model)")
    t.add_argument("--minutes", type=float, help="time budget (default 7 for the from-scratch models)")
    t.add_argument("--steps", type=int, help="batches per epoch (default 40, 50 for facenet-head)")
    t.add_argument("--plot", metavar="PNG", help="loss/accuracy curves (default: OUT-curves.png)")
    t.set_defaults(func=cmd_train)

    c = ss.add_parser("calibrate", help="store a trained network's threshold, from its validation people")
    c.add_argument("model_file", metavar="MODEL.npz")
    c.add_argument("--data", required=True, metavar="DIR", help="the DIR/IDENTITY/*.jpg photos it was trained from")
    c.add_argument("--cache", metavar="DIR", help="where face crops are cached")
    c.add_argument("--far", type=float, default=1e-3, help="pair false-accept rate to aim at (default 0.001)")
    c.set_defaults(func=cmd_calibrate)

    e = ss.add_parser("eval", help="N-way one-shot on the test people, every model and plain FaceNet")
    _common(e)
    e.add_argument("--weights", default=str(WEIGHTS_DIR), metavar="DIR",
                   help="where siamese-KIND.npz are looked for (default models/weights)")
    e.add_argument("--no-train", action="store_true", help="fail instead of training a missing model")
    e.add_argument("--trials", type=int, default=1000, help="trials per N (default 1000)")
    e.add_argument("--seed", type=int, default=0, help="trial seed (default 0)")
    e.add_argument("--roc", default="siamese-roc.png", metavar="PNG", help="ROC curves (default siamese-roc.png)")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.set_defaults(func=cmd_eval)
