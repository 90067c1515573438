"""`facebot attendance [--date D] [--json|--csv]`: who the cameras saw on a day, all cameras
together, from the sightings recorded in the gallery (the same table as the bot's
/attendance and its daily summary). Days are days in FACEBOT_TZ (default the machine's zone).
"""
from __future__ import annotations

import csv
import json
import sys
from datetime import date, datetime


def add_command(sub) -> None:
    p = sub.add_parser("attendance", help="who the cameras saw on a day (all cameras)")
    p.add_argument("--date", type=_day, default=None, metavar="YYYY-MM-DD", help="the day (default: today in FACEBOT_TZ)")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON object: date, timezone, people")
    form.add_argument("--csv", action="store_true", help="CSV: name, cameras (';'-separated), first, last")
    p.set_defaults(func=run)


def _day(value: str) -> date:
    import argparse

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-03-31") from None


def run(args) -> int:
    """Print the day's attendance; exit 2 for a bad FACEBOT_TZ."""
    from facebot.config import ConfigError, parse_zone, setting
    from facebot.office import attendance_table, local_zone
    from facebot.service import open_service, service_options

    try:
        tz = parse_zone(setting("FACEBOT_TZ")) or local_zone()
    except ConfigError as exc:
        print(f"facebot: {exc}", file=sys.stderr)
        return 2
    day = args.date or datetime.now(tz).date()
    rows = open_service(**service_options(args), gallery_only=True).attendance(day, tz)
    if args.json:
        print(json.dumps({"date": day.isoformat(), "timezone": str(tz), "people": [r.to_dict() for r in rows]},
                         ensure_ascii=False))
    elif args.csv:
        out = csv.writer(sys.stdout)
        out.writerow(["name", "cameras", "first", "last"])
        for r in rows:
            d = r.to_dict()
            out.writerow([d["name"], ";".join(d["cameras"]), d["first"], d["last"]])
    elif rows:
        print(f"{day.isoformat()} ({tz}): {len(rows)} person(s) seen")
        for line in attendance_table(rows):
            print(f"  {line}")
    else:
        print(f"{day.isoformat()} ({tz}): nobody was seen")
    return 0
