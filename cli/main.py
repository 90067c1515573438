"""`facebot`: enroll, identify, list, delete, evaluate and demo from the command line.

Models load once per command, and only for commands that need them.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from pathlib import Path

from facebot.config import data_dir_default, load_dotenv_into_environment, setting

log = logging.getLogger("facebot")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _progress(iterable, total=None, desc=""):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="photo", file=sys.stderr, disable=None, leave=False)


def _service(args):
    """The service named by the global options."""
    from facebot.service import open_service, service_options

    return open_service(**service_options(args))


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be 1 or more")
    return value


def _fail(message: str) -> int:
    print(f"facebot: {message}", file=sys.stderr)
    return EXIT_FAILED


CONSENT_HELP = ('who consented, when and for what, e.g. "Ana García, form HR-7 signed 2026-11-20, door access" '
                '(required: faces are special-category personal data)')


def _consent(args) -> str | None:
    """The cleaned --consent note, or None after telling the user why it is needed or wrong
    (before any model loads)."""
    from facebot.service import InvalidConsent, validate_consent

    if args.consent is None:
        print(f"facebot: {args.command} needs --consent NOTE: {CONSENT_HELP}; nothing was enrolled", file=sys.stderr)
        return None
    try:
        return validate_consent(args.consent)
    except InvalidConsent as exc:
        print(f"facebot: --consent: {exc} (who consented, when and for what); nothing was enrolled", file=sys.stderr)
        return None


# -- commands -------------------------------------------------------------------------------
def cmd_enroll(args) -> int:
    """All photos are checked first; the samples are then saved together or not at all."""
    from facebot.recognition import ImageError
    from facebot.recognition.images import read_photo
    from facebot.service import InvalidName, SeveralFaces, small_sample, validate_name

    consent = _consent(args)
    if consent is None:
        return EXIT_USAGE
    try:
        name = validate_name(args.name)
    except InvalidName as exc:
        return _fail(f"invalid name: {exc}")
    if args.face is not None and len(args.images) != 1:
        print("facebot: --face chooses a face in one photo; give one photo with it", file=sys.stderr)
        return EXIT_USAGE
    photos = []
    for path in args.images:
        try:
            photos.append(read_photo(path))
        except ImageError as exc:
            return _fail(f"{path}: {exc}; nothing was enrolled")
    try:
        enrolled = _service(args).enroll(name, photos, force=args.force, actor=_actor(), consent=consent,
                                         face=args.face)
    except SeveralFaces as exc:
        return _fail(f"{args.images[getattr(exc, 'photo', 0)]}: {exc}: --face 1..{exc.count} "
                     "(`facebot identify` lists them in that order); nothing was enrolled")
    except ValueError as exc:  # EnrollRefused, TooManyFaces: `photo` says which one
        return _fail(f"{args.images[getattr(exc, 'photo', 0)]}: {exc}; nothing was enrolled")
    print(f"enrolled {enrolled.name}: {enrolled.added} new sample(s), {enrolled.samples} in all")
    for path, pixels in zip(args.images, enrolled.widths):
        if small_sample(pixels):
            print(f"note: {path}: {small_face_note(pixels)}", file=sys.stderr)
    return EXIT_OK


def small_face_note(pixels: float) -> str:
    """Why an enrolled face `pixels` px wide (see service.small_sample) makes a weaker sample."""
    from facebot.service import GOOD_ENROLL_FACE

    return (f"the face is {pixels:.0f} px wide: a sample from a face under {GOOD_ENROLL_FACE} px names its owner "
            "less often (Georgia Tech: 87-93% of their photos from 48-64 px, 98-99% from bigger faces); "
            "a closer photo makes a better one")


def cmd_enroll_dir(args) -> int:
    from facebot.recognition.evaluate import list_tree

    consent = _consent(args)
    if consent is None:
        return EXIT_USAGE
    try:
        items = list_tree(args.dir)
    except FileNotFoundError as exc:
        return _fail(str(exc))
    if not items:
        return _fail(f"no photos found in {args.dir}/NAME/ folders")
    service = _service(args)

    def checkpoint(saved: int) -> None:
        print(f"saved {saved} samples", flush=True)

    report = service.enroll_many(_progress(items, desc="enrolling"), force=args.force, actor=_actor(),
                                 batch=args.batch, checkpoint=checkpoint, consent=consent)
    print(f"enrolled {report.enrolled} photos of {report.people} people; skipped {len(report.skipped)}")
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}")
    for name, path, count in report.several_faces:
        print(f"  to enroll one face of {path}: facebot enroll {shlex.quote(name)} {shlex.quote(path)} --face N "
              f"--consent NOTE (N: 1..{count}, biggest first, as `facebot identify` lists them)")
    for path, pixels in report.small_faces:
        print(f"  note: {path}: {small_face_note(pixels)}")
    return EXIT_OK if report.enrolled else EXIT_FAILED


def photos_in(paths: list[str]) -> list[str]:
    """The photos to look at: each path given, a folder replaced by the photos directly in it
    (by name; other files passed over), or kept as it is when it holds none, to be reported."""
    from facebot.recognition.images import IMAGE_SUFFIXES

    found = []
    for path in paths:
        inside = []
        if Path(path).is_dir():
            inside = sorted(str(p) for p in Path(path).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        found += inside or [path]
    return found


# identify's words for DecisionRule.refusal
UNKNOWN_BECAUSE = {"nobody": "nobody enrolled", "far": "nobody enrolled is near enough",
                   "unclear": "about as near to two enrolled people", "background": "about as near to a stranger"}


def cmd_identify(args) -> int:
    from facebot.recognition import ImageError, TooManyFaces
    from facebot.recognition.draw import annotate, face_labels
    from facebot.recognition.images import encode_jpeg, read_photo

    service = _service(args)
    if args.annotate:
        Path(args.annotate).mkdir(parents=True, exist_ok=True)
    failed = looked = False
    for path in photos_in(args.images):
        try:
            if Path(path).is_dir():
                raise ImageError("no photos (JPEG, PNG, WebP or BMP) in this folder; its subfolders are not looked in")
            photo = read_photo(path)  # a big JPEG decoded at a reduced size; boxes in the photo's pixels
            results = service.identify(photo, actor=_actor())
            looked = looked or bool(results)
        except (ImageError, TooManyFaces) as exc:
            failed = True
            if args.json:
                print(json.dumps({"image": path, "error": str(exc)}), flush=True)
            else:
                print(f"{path}: error: {exc}", flush=True)
            continue
        rule = service.rule  # read from the gallery's settings: once per photo, not once per face
        why = [None if r.known else rule.refusal(r.distance, r.score, r.background, r.pixels) for r in results]
        if args.json:
            faces = [{**r.to_dict(), "unknown_because": because} for r, because in zip(results, why)]
            print(json.dumps({"image": path, "faces": faces}), flush=True)
        else:
            print(f"{path}: {len(results)} face(s)" if results else f"{path}: no face found")
            for i, (r, because) in enumerate(zip(results, why), 1):  # biggest first: the numbers `enroll --face` takes
                said = f"  ({UNKNOWN_BECAUSE[because]})" if because else ""
                print(f"  {i}. {r.label:<21} distance {r.distance:.3f}  score {r.score:.3f}  box {list(r.box)}{said}")
        if args.annotate:
            out = Path(args.annotate) / (Path(path).stem + ".annotated.jpg")
            out.write_bytes(encode_jpeg(annotate(photo, face_labels(results))))
    if looked and service.nobody_enrolled():  # a new user's first try: say why every face was unknown
        print(f"facebot identify: nobody is enrolled yet in {service.gallery_place}, so every face is unknown; "
              "enroll people with `facebot enroll NAME PHOTO --consent NOTE`", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_list(args) -> int:
    people = _gallery_service(args).people()
    if args.json:
        print(json.dumps([{"name": p.name, "samples": p.samples, "created": p.created} for p in people]))
        return EXIT_OK
    if not people:  # a folder not there may be a mistyped --data-dir: name it
        print("no one is enrolled yet" + (f" (no gallery at {args.data_dir} yet)" if _no_gallery_folder(args) else ""))
    for p in people:
        print(f"{p.name:<40} {p.samples:>3} sample(s)  since {p.created}")
    return EXIT_OK


def cmd_samples(args) -> int:
    """A person's samples: id, date, who added each, and the consent recorded; with
    --delete ID, that one sample deleted instead."""
    from facebot.service import UnknownPerson

    if args.delete is not None:
        return _delete_sample(args)
    try:
        person, samples = _gallery_service(args).samples(args.name)
    except UnknownPerson as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps({"name": person.name, "created": person.created, "samples": [
            {"id": s.id, "created": s.created, "created_by": s.created_by, "consent": s.consent, "features": s.features}
            for s in samples]}, ensure_ascii=False))
        return EXIT_OK
    print(f"{person.name}: {len(samples)} sample(s), enrolled since {person.created}")
    for s in samples:
        consent = s.consent if s.consent is not None else "(none recorded)"
        print(f"  #{s.id:<5} {s.created}  by {s.created_by:<16} consent: {consent}")
    return EXIT_OK


def _delete_sample(args) -> int:
    """`facebot samples NAME --delete ID`: delete sample ID of NAME without asking (scripts
    run this; the id comes from the listing), say what went and how many samples remain.
    The service audits it ("delete-sample", in the same transaction). Returns EXIT_OK, or
    EXIT_FAILED for an unknown person or sample id (nothing deleted then)."""
    from facebot.service import UnknownPerson, UnknownSample

    try:
        removal = _gallery_service(args).delete_sample(args.name, args.delete, actor=_actor())
    except (UnknownPerson, UnknownSample) as exc:
        return _fail(f"{exc}; nothing was deleted")
    sample = removal.sample
    if args.json:
        print(json.dumps({"name": removal.name, "deleted": {"id": sample.id, "created": sample.created,
                                                            "created_by": sample.created_by, "consent": sample.consent},
                          "samples": removal.left}, ensure_ascii=False))
        return EXIT_OK
    print(f"deleted sample #{sample.id} of {removal.name} (added {sample.created} by {sample.created_by}); "
          f"{removal.left} sample(s) left")
    if not removal.left:  # the person stays: say how to erase them, so that nobody assumes it happened
        print(f"{removal.name} is still enrolled, with no sample; `facebot delete` erases them")
    return EXIT_OK


def cmd_export(args) -> int:
    """Everything stored about a person, as one JSON document (a data-subject access request)."""
    from facebot.service import UnknownPerson

    try:
        export = _gallery_service(args).export(args.name, actor=_actor(), embeddings=not args.no_embeddings)
    except UnknownPerson as exc:
        return _fail(str(exc))
    print(json.dumps(export, ensure_ascii=False, indent=2))
    return EXIT_OK


def cmd_delete(args) -> int:
    from facebot.service import UnknownPerson

    try:
        erasure = _gallery_service(args).erase(args.name, actor=_actor())
    except UnknownPerson as exc:
        return _fail(str(exc))
    print(f"deleted {erasure.name}: {erasure.samples} sample(s) removed; {erasure.audit_entries} audit entries now "
          f"say {erasure.pseudonym} instead of the name")
    return EXIT_OK


def cmd_threshold(args) -> int:
    service = _gallery_service(args)
    if args.value is None:
        rule, source = service.stored_rule()
        print(f"threshold {rule.low} ({source})" if rule.is_threshold else f"{rule.describe()} ({source})")
        return EXIT_OK
    try:
        value = service.set_threshold(args.value, actor=_actor())
    except ValueError as exc:
        return _fail(str(exc))
    print(f"threshold set to {value} (a plain distance threshold; `facebot calibrate` fits a rule)")
    return EXIT_OK


def cmd_calibrate(args) -> int:
    """Fit the decision rule on labelled folders and save it (unless --dry-run)."""
    from facebot.lab.calibration import format_calibration, run_calibrate

    service = _service(args)
    try:
        rule, rows = run_calibrate(args.dirs, args.far, service.recognizer, progress=_progress)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps({"rule": rule.to_dict(), "far": args.far, "folders": rows, "saved": not args.dry_run}))
    else:
        print(format_calibration(rule, rows, args.far))
    if not args.dry_run:
        service.set_rule(rule, actor=_actor(), action="calibrate")
        if not args.json:
            print(f"saved in {service.gallery_place}: every identification from now on follows this rule")
    return EXIT_OK


def cmd_audit(args) -> int:
    for entry in _gallery_service(args).audit_log(args.last):
        print(json.dumps(entry, ensure_ascii=False))
    return EXIT_OK


def cmd_eval(args) -> int:
    from facebot.lab.evaluation import run_eval

    # the figures of the rule in force: saved in the gallery, or the default; a gallery folder
    # that is not there holds no rule
    args.rule = None if _no_gallery_folder(args) else _gallery_service(args).saved_rule()

    return run_eval(args, _progress)


def cmd_demo(args) -> int:
    from facebot.lab.demo import run_demo

    return run_demo(args)


def _no_gallery_folder(args) -> bool:
    """Whether the gallery is a TinyDB folder that is not there (made by the first change)."""
    return not getattr(args, "database_url", None) and not Path(args.data_dir).exists()


def _gallery_service(args):
    """The service for commands that only read or change the gallery (no networks loaded
    with FaceNet)."""
    from facebot.service import open_service, service_options

    return open_service(**service_options(args), gallery_only=True)


def _actor() -> str:
    return f"cli:{os.environ.get('USER', 'unknown')}"


# -- wiring ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from facebot import __version__

    # No abbreviations: a subcommand's --data must not be read as a prefix of --data-dir/--database-url.
    parser = argparse.ArgumentParser(prog="facebot", description="One-shot face recognition for your team.",
                                     allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"facebot {__version__}")
    parser.add_argument("--data-dir", default=data_dir_default(), help="gallery folder (default: $FACEBOT_DATA_DIR or ./data)")
    parser.add_argument("--database-url", default=setting("FACEBOT_DATABASE_URL") or None, metavar="postgresql://...",
                        help="a shared PostgreSQL gallery instead of --data-dir (default: $FACEBOT_DATABASE_URL)")
    parser.add_argument("--threshold", type=float, default=None, help="distance threshold (default: saved setting or calibrated)")
    parser.add_argument("--detector", choices=["mtcnn", "haar"], default="mtcnn", help="face detector (default: mtcnn)")
    parser.add_argument("--model", default=setting("FACEBOT_MODEL", "facenet") or "facenet", metavar="facenet|PATH.npz",
                        help="how faces are compared: FaceNet distance (default), or a trained Siamese network "
                             "(default: $FACEBOT_MODEL or facenet)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("enroll", help="enroll a person from one or more photos")
    p.add_argument("name")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos of the person (a folder of people: enroll-dir)")
    p.add_argument("--force", action="store_true", help="enroll even if the face matches someone else")
    p.add_argument("--face", type=int, metavar="N",
                   help="in a photo of several people, enroll face N (1 = the biggest, as `identify` numbers them)")
    p.add_argument("--consent", metavar="NOTE", help=CONSENT_HELP)
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("enroll-dir", help="enroll every DIR/NAME/*.jpg")
    p.add_argument("dir")
    p.add_argument("--force", action="store_true")
    p.add_argument("--consent", metavar="NOTE", help=CONSENT_HELP + "; recorded for every photo")
    p.add_argument("--batch", type=int, default=100, help="photos per database write (default 100)")
    p.set_defaults(func=cmd_enroll_dir)

    p = sub.add_parser("identify", help="name every face in photos")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos, or folders of photos")
    p.add_argument("--json", action="store_true", help="one JSON object per image per line")
    p.add_argument("--annotate", metavar="DIR", help="write annotated copies into DIR")
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("list", help="list enrolled people")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("samples", help="a person's samples: id, date, who added each, consent; or delete one")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.add_argument("--delete", type=int, metavar="ID",
                   help="delete the sample with this id (shown as #ID by the listing), without asking; audited")
    p.set_defaults(func=cmd_samples)

    p = sub.add_parser("export", help="everything stored about a person, as JSON (data-subject access request)")
    p.add_argument("name")
    p.add_argument("--no-embeddings", action="store_true", help="leave the embeddings out (they are included, base64)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("delete", help="erase a person: all their samples, and their name in the audit log")
    p.add_argument("name")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("calibrate", help="fit the decision rule on labelled DIR/NAME/*.jpg folders and save it")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--far", type=float, default=0.005, help="open-set false-accept rate to stay under on every folder (default 0.005)")
    p.add_argument("--dry-run", action="store_true", help="print the rule and its figures without saving it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("threshold", help="show the decision rule, or save a plain distance threshold")
    p.add_argument("value", nargs="?")
    p.set_defaults(func=cmd_threshold)

    p = sub.add_parser("audit", help="show the newest audit entries")
    p.add_argument("last", nargs="?", type=int, default=20)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("eval", help="measure accuracy on a DIR/IDENTITY/*.jpg tree")
    p.add_argument("dir")
    p.add_argument("--json", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trials", type=int, default=1000, help="N-way trials (default 1000)")
    p.add_argument("--repeats", type=int, default=10, help="repeats of the one-shot and open-set draws")
    p.add_argument("--shots", type=positive_int, default=1, metavar="K",
                   help="photos enrolled per person in the open-set draws (default 1: one-shot)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="enroll and identify the sample faces shipped with facebot")
    p.add_argument("--out", default="facebot-demo.jpg", help="annotated picture to write")
    p.set_defaults(func=cmd_demo)

    for extra in _extra_commands():
        extra(sub)
    return parser


def _extra_commands():
    """Subcommands that live in their own modules (Telegram bot, camera, Siamese, attendance)."""
    from facebot.bot import telegram_bot
    from facebot.cli import attendance, db
    from facebot.camera import webcam
    from facebot.lab import siamese as siamese_cli

    return [telegram_bot.add_command, webcam.add_command, siamese_cli.add_command, db.add_command, attendance.add_command]


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow start-up chatter
    # TensorFlow prints a line about its oneDNN kernels at import whatever the log level; it
    # only converts the networks by default (FaceNet and MTCNN then run on TFLite): not needed
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    load_dotenv_into_environment()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threshold is not None and not 0 < args.threshold < 2:
        return _fail("the threshold must be between 0 and 2")
    if args.model != "facenet" and not Path(args.model).is_file():
        return _fail(f"--model: {args.model} is not a file (use facenet or a `facebot siamese train` .npz)")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # last resort: one clear line, details with -v
        from facebot.service import GalleryBusy

        if isinstance(exc, GalleryBusy) or not args.verbose:
            log.debug("failure", exc_info=True)
            return _fail(f"{type(exc).__name__}: {exc}")
        raise


if __name__ == "__main__":
    sys.exit(main())
