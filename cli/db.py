"""`facebot db`: set up, inspect and move the gallery's store (TinyDB folder or PostgreSQL).

    facebot --database-url postgresql://... db init      # create or upgrade the schema (idempotent)
    facebot db status [--json]                             # where the gallery is and what it holds
    facebot db copy --from data --to postgresql://...      # move a gallery, and verify it
    facebot db copy --from postgresql://... --to backup/   # and back

Like every face, this module reaches the storage through `facebot.service` (README,
"Layout": the command line never imports `storage`).
"""
from __future__ import annotations

import argparse
import json
import sys

EXIT_OK, EXIT_FAILED = 0, 1


def _storage():
    """The service module, which passes on the storage operations: copy_gallery,
    gallery_status, init_database (imported when a command runs: psycopg loads only then)."""
    from facebot import service

    return service


def _fail(message: str) -> int:
    print(f"facebot db: {message}", file=sys.stderr)
    return EXIT_FAILED


def _where(args) -> str:
    """The gallery the global options name: the database URL if set, else the folder."""
    return args.database_url or args.data_dir


def cmd_init(args) -> int:
    """Create the PostgreSQL schema, or apply the migrations it lacks."""
    service = _storage()
    if not args.database_url:
        return _fail("no database: give --database-url postgresql://... or set FACEBOT_DATABASE_URL "
                     "(a TinyDB folder needs no init)")
    try:
        applied, version = service.init_database(args.database_url)
    except (service.GalleryBusy, ValueError) as exc:
        return _fail(str(exc))
    if applied:
        print(f"schema at version {version} (applied {', '.join(map(str, applied))})")
    else:
        print(f"schema already at version {version}; nothing to do")
    return EXIT_OK


def cmd_status(args) -> int:
    """Where the gallery is, its schema version (PostgreSQL) and what it holds."""
    service = _storage()
    try:
        status = service.gallery_status(_where(args))
    except (service.GalleryBusy, ValueError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
        return EXIT_OK
    if not status["exists"]:
        print(f"no gallery at {status['where']} yet: its folder is made by the first enrollment")
        return EXIT_OK
    print(f"{status['store']} gallery at {status['where']}")
    if "schema_version" in status:
        print(f"  schema version {status['schema_version']}")
    print(f"  {status['people']} people, {status['samples']} samples, {status['settings']} settings, "
          f"{status['audit']} audit entries")
    for features, count in sorted(status["per_features"].items()):
        print(f"  {count:>8} samples made by {features}")
    return EXIT_OK


def cmd_copy(args) -> int:
    """Copy everything from --from into an empty --to, then compare both."""
    service = _storage()
    if args.source == args.target:
        return _fail("--from and --to are the same gallery")
    try:
        report = service.copy_gallery(args.source, args.target)
    except (service.GalleryBusy, ValueError) as exc:  # unreachable database, target not empty, bad URL
        return _fail(str(exc))
    s, t = report.source, report.target
    print(f"copied {t.people} people, {t.samples} samples, {t.settings} settings and {t.audit} audit entries "
          f"in {report.seconds:.1f} s")
    for features, count in sorted(t.per_features.items()):
        print(f"  {count:>8} samples made by {features}")
    if report.skipped:
        print(f"  {report.skipped} sample(s) belonging to nobody were left behind")
    if not report.ok:
        return _fail(f"the copy does not match its source: source {s.counts()} (samples {s.samples_sha256[:12]}), "
                     f"target {t.counts()} (samples {t.samples_sha256[:12]})")
    print(f"verified: same counts, same embeddings and consent notes (sha256 {t.samples_sha256[:12]})")
    return EXIT_OK


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `facebot db init|status|copy`."""
    p = subparsers.add_parser("db", help="set up, inspect and move the gallery store (TinyDB or PostgreSQL)")
    sub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")

    q = sub.add_parser("init", help="create or upgrade the PostgreSQL schema (--database-url); safe to repeat")
    q.set_defaults(func=cmd_init)

    q = sub.add_parser("status", help="where the gallery is and what it holds")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_status)

    q = sub.add_parser("copy", help="copy a whole gallery between a folder and a database (either way) and verify it")
    q.add_argument("--from", dest="source", required=True, metavar="DIR|URL", help="gallery folder or postgresql:// URL")
    q.add_argument("--to", dest="target", required=True, metavar="DIR|URL",
                   help="an empty gallery folder or database (postgresql://...)")
    q.set_defaults(func=cmd_copy)
