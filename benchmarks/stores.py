"""The two gallery stores side by side: TinyDB files and PostgreSQL, at 1,000 and 100,000 samples.

Run from the repository root::

    .venv/bin/python benchmarks/stores.py                       # 1,000 and 100,000 samples
    .venv/bin/python benchmarks/stores.py --sizes 1000 --cap 10  # a quick look
    .venv/bin/python benchmarks/stores.py --database-url postgresql://user@host/postgres

Without --database-url it starts its own PostgreSQL (initdb in a temporary folder, the
same helper as the tests, tests/postgres_server.py) with PostgreSQL's default durability
(fsync on), since TinyDB fsyncs every write too. With --database-url it creates and drops
databases named facebot_bench_* on that server.

For each store and gallery size N (N people, one synthetic 512-d unit sample each):

- bulk load: N samples in one `add_samples` transaction;
- enroll 1 / enroll 100: one `add_samples` call of 1 or 100 new samples into the gallery of N;
- cold read: a new store object's `embeddings()` plus the search `Matcher` the service
  builds from it (what a bot or camera does at start);
- refresh: after another object enrolled one sample, the warm reader's `version`,
  `embeddings()` and Matcher rebuild (what the service does before the next search);
- version: the unchanged-`version` check made before every search;
- copy: `copy_gallery` of the TinyDB gallery into an empty PostgreSQL database, checked
  (counts, digest) and compared by nearest person for 200 noisy probes.

Each timing is repeated until `--cap` seconds are spent on it (at least once, at most
`--repeats`); the table shows `median [min-max]` and the count. Writes JSON to
benchmarks/results/stores.json (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python benchmarks/stores.py` puts only benchmarks/ on the path
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from facebot.recognition.match import Matcher  # noqa: E402
from facebot.storage import Gallery, copy_gallery, open_gallery  # noqa: E402

DEFAULT_OUT = REPO / "benchmarks" / "results" / "stores.json"


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def units(count: int, seed: int, dim: int = 512) -> np.ndarray:
    """`count` random unit vectors (float32), the same for the same seed."""
    m = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def summarise(seconds: list[float], scale: float = 1000.0) -> dict:
    """Median, min, max (in ms by default) and count of a list of timings."""
    arr = np.asarray(seconds, dtype=np.float64) * scale
    return {"median": float(np.median(arr)), "min": float(arr.min()), "max": float(arr.max()), "n": int(arr.size)}


def repeat(fn: Callable[[], object], cap_s: float, most: int, prepare: Callable[[], object] | None = None) -> list[float]:
    """Time `fn` until `cap_s` seconds are spent (at least once, at most `most` times);
    `prepare` runs untimed before each call."""
    times: list[float] = []
    spent = 0.0
    while not times or (spent < cap_s and len(times) < most):
        if prepare:
            prepare()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return times


class Stores:
    """Where each kind of store lives for one gallery size: a folder and a database URL."""

    def __init__(self, root: Path, make_database: Callable[[str], str]):
        self.root = root
        self.make_database = make_database

    def location(self, kind: str, name: str) -> str:
        return self.make_database(name) if kind == "postgresql" else str(self.root / name)

    @staticmethod
    def open(kind: str, location: str):
        return open_gallery(database_url=location) if kind == "postgresql" else open_gallery(location)


def bench_store(kind: str, stores: Stores, size: int, cap_s: float, most: int) -> dict:
    """Every measurement of one store at one gallery size."""
    location = stores.location(kind, f"g{size}")
    gallery = stores.open(kind, location)
    gallery.version  # connect and create the schema before the clock starts
    vectors = units(size, seed=size)
    log(f"{kind} {size:,}: bulk load")
    start = time.perf_counter()
    gallery.add_samples([(f"person {i:06d}", v) for i, v in enumerate(vectors)], actor="bench")
    result: dict = {"bulk_load_s": time.perf_counter() - start}
    result["bulk_samples_per_s"] = size / result["bulk_load_s"]
    fresh = iter(units(100_000, seed=size + 1))
    counter = iter(range(10**9))

    log(f"{kind} {size:,}: enroll 1")
    result["enroll_1_ms"] = summarise(repeat(
        lambda: gallery.add_samples([(f"new {next(counter)}", next(fresh))], actor="bench"), cap_s, most))
    log(f"{kind} {size:,}: enroll 100")
    result["enroll_100_ms"] = summarise(repeat(
        lambda: gallery.add_samples([(f"new {next(counter)}", next(fresh)) for _ in range(100)], actor="bench"),
        cap_s, most))

    log(f"{kind} {size:,}: cold read")

    def cold_read() -> None:
        Matcher(*stores.open(kind, location).embeddings())

    result["cold_read_ms"] = summarise(repeat(cold_read, cap_s, most))
    reader, writer = stores.open(kind, location), stores.open(kind, location)
    Matcher(*reader.embeddings())

    def refresh() -> None:
        reader.version
        Matcher(*reader.embeddings())

    log(f"{kind} {size:,}: refresh after another process's enrollment")
    result["refresh_ms"] = summarise(repeat(
        refresh, cap_s, most, prepare=lambda: writer.add_samples([(f"new {next(counter)}", next(fresh))], actor="bench")))
    version_times = repeat(lambda: reader.version, min(cap_s, 2.0), 2000)
    result["version_us"] = summarise(version_times, scale=1e6)
    result["samples_after"] = len(reader.embeddings()[0])
    if kind == "tinydb":
        result["bytes"] = (Path(location) / "gallery.json").stat().st_size
    else:
        import psycopg

        with psycopg.connect(location) as conn:
            result["bytes"] = conn.execute("SELECT pg_total_relation_size('samples') + pg_total_relation_size('people')"
                                           ).fetchone()[0]
    if hasattr(gallery, "close"):
        for g in (gallery, reader, writer):
            g.close()
    return result


def bench_copy(stores: Stores, size: int) -> dict:
    """TinyDB gallery of `size` to an empty database and back: time, check, nearest person."""
    source = stores.location("tinydb", f"g{size}")
    there, back = stores.location("postgresql", f"copy{size}"), stores.location("tinydb", f"back{size}")
    log(f"copy {size:,}: TinyDB -> PostgreSQL -> TinyDB")
    to_pg = copy_gallery(source, there)
    to_dir = copy_gallery(there, back)
    probes = units(200, seed=7) * 0.3 + units(size, seed=size)[:200]  # near known people, plus noise
    nearest = []
    for store in (Gallery(source), open_gallery(database_url=there), Gallery(back)):
        names, matrix = store.embeddings()
        nearest.append([names[j] for j in np.argmax(probes @ matrix.T, axis=1)])  # unit rows: max dot = min L2
    return {"to_postgresql_s": to_pg.seconds, "to_tinydb_s": to_dir.seconds, "ok": to_pg.ok and to_dir.ok,
            "people": to_dir.target.people, "samples": to_dir.target.samples,
            "same_nearest_person": nearest[0] == nearest[1] == nearest[2], "probes": len(probes)}


def fmt(stats: dict, digits: int = 1) -> str:
    return f"{stats['median']:.{digits}f} [{stats['min']:.{digits}f}-{stats['max']:.{digits}f}] n={stats['n']}"


def render(results: dict) -> str:
    """The side-by-side table."""
    lines = [f"facebot gallery stores, {results['started']}",
             f"{results['machine']}; PostgreSQL {results['postgresql']}; cap {results['cap_s']:.0f} s per timing", ""]
    header = f"{'measurement':<34}{'TinyDB':>34}{'PostgreSQL':>34}"
    for size, by_kind in results["sizes"].items():
        t, p = by_kind.get("tinydb", {}), by_kind.get("postgresql", {})
        lines += [f"gallery of {int(size):,} samples", header, "-" * len(header)]

        def row(label: str, key: str, digits: int = 1) -> None:
            lines.append(f"{label:<34}{fmt(t[key], digits) if key in t else '-':>34}"
                         f"{fmt(p[key], digits) if key in p else '-':>34}")

        lines.append(f"{'bulk load (samples/s)':<34}{t.get('bulk_samples_per_s', 0):>34,.0f}{p.get('bulk_samples_per_s', 0):>34,.0f}")
        row("enroll 1 sample (ms)", "enroll_1_ms")
        row("enroll 100 samples (ms)", "enroll_100_ms")
        row("cold read + matrix (ms)", "cold_read_ms")
        row("refresh after 1 enrollment (ms)", "refresh_ms")
        row("version check (us)", "version_us")
        lines.append(f"{'stored size (MB)':<34}{t.get('bytes', 0) / 1e6:>34.1f}{p.get('bytes', 0) / 1e6:>34.1f}")
        if c := by_kind.get("copy"):
            lines.append(f"copy TinyDB -> PostgreSQL {c['to_postgresql_s']:.1f} s, back {c['to_tinydb_s']:.1f} s: "
                         f"{c['people']:,} people, {c['samples']:,} samples, checked {'ok' if c['ok'] else 'FAILED'}, "
                         f"nearest person of {c['probes']} probes {'identical' if c['same_nearest_person'] else 'DIFFERENT'}")
        lines.append("")
    lines.append(f"{results['seconds']:.0f} s in all; load average {results['load_average_start']} at start, "
                 f"{results['load_average_end']} at end (2 cores: above ~0.5 other work inflates every timing)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000", help="gallery sizes, comma-separated (default 1000,100000)")
    parser.add_argument("--cap", type=float, default=30.0, help="seconds per timing at most (after one call; default 30)")
    parser.add_argument("--repeats", type=int, default=20, help="calls per timing at most (default 20)")
    parser.add_argument("--database-url", help="a PostgreSQL server to create facebot_bench_* databases on "
                                               "(default: start one in a temporary folder)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"JSON file (default {DEFAULT_OUT.relative_to(REPO)})")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    import psycopg

    server = None
    if args.database_url:
        admin_url = args.database_url
    else:
        from tests.postgres_server import PostgresServer, find_bindir

        bindir = find_bindir()
        if bindir is None:
            print("no PostgreSQL binaries found (install postgresql, or give --database-url)", file=sys.stderr)
            return 2
        log("starting a PostgreSQL server (fsync on)")
        server = PostgresServer(bindir, durable=True).start()
        admin_url = server.url()
    created: list[str] = []

    def make_database(name: str) -> str:
        db = f"facebot_bench_{name}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
            conn.execute(f'CREATE DATABASE "{db}"')
        created.append(db)
        base = admin_url.rsplit("/", 1)[0]
        return f"{base}/{db}"

    started = time.time()
    results = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                          f"Python {platform.python_version()}",
               "cap_s": args.cap, "repeats": args.repeats, "sizes": {}}
    try:
        with psycopg.connect(admin_url) as conn:
            version, fsync, sync_commit = (conn.execute(f"SHOW {name}").fetchone()[0]
                                           for name in ("server_version", "fsync", "synchronous_commit"))
        results["postgresql"] = f"{version}, fsync {fsync}, synchronous_commit {sync_commit}"
        results["load_average_start"] = [round(x, 2) for x in os.getloadavg()]
        with tempfile.TemporaryDirectory(prefix="facebot-stores-") as tmp:
            stores = Stores(Path(tmp), make_database)
            for size in sizes:
                by_kind = results["sizes"][str(size)] = {}
                for kind in ("tinydb", "postgresql"):
                    by_kind[kind] = bench_store(kind, stores, size, args.cap, args.repeats)
                by_kind["copy"] = bench_copy(stores, size)
    finally:
        if created:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                for db in created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if server:
            server.stop()
    results["seconds"] = time.time() - started
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    text = render(results)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
