"""What only the PostgreSQL gallery has: schema migrations, `facebot db`, refreshing from what
changed, passwords kept out of messages, failures of the server, and many processes on one
database (with one of them killed mid-write). All against a real server (tests/postgres_server.py);
embeddings are synthetic 512-d unit vectors, no face model is loaded.

The behaviour both stores share is tested in tests/test_gallery.py, on both.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest

import facebot.service
import facebot.storage as storage
from facebot.storage import Gallery, GalleryBusy, copy_gallery, open_gallery
from facebot.storage.migrations import LATEST, MIGRATIONS, SchemaTooNew, migrate
from facebot.storage.postgres import GalleryUnavailable, PostgresGallery, redact_url
from facebot.storage.store import TargetNotEmpty, dump_gallery


def unit(seed: int, dim: int = 512) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def units(count: int, seed: int = 0, dim: int = 512) -> np.ndarray:
    m = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def sql(url: str, query: str, params=None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture()
def db_cli(monkeypatch, capsys):
    """Run `facebot ARGS` in-process; returns (exit code, stdout, stderr)."""
    from facebot.cli.main import main

    def run(*args):
        code = main([*map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


# -- schema and migrations ---------------------------------------------------------------------
def test_db_init_is_idempotent_and_records_every_migration(postgres_url, db_cli):
    code, out, err = db_cli("--database-url", postgres_url, "db", "init")
    assert code == 0 and f"schema at version {LATEST} (applied {', '.join(str(m.version) for m in MIGRATIONS)})" in out, err
    code, out, _ = db_cli("--database-url", postgres_url, "db", "init")
    assert code == 0 and f"already at version {LATEST}" in out
    rows = sql(postgres_url, "SELECT version, name FROM schema_version ORDER BY version")
    assert rows == [(m.version, m.name) for m in MIGRATIONS]
    tables = {r[0] for r in sql(postgres_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"schema_version", "people", "samples", "settings", "audit", "gallery_version", "deletions"}
    assert "vector" not in {r[0] for r in sql(postgres_url, "SELECT extname FROM pg_extension")}


def test_migrations_apply_in_order_from_any_version_and_refuse_a_newer_schema(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert migrate(conn, MIGRATIONS[:1]) == [1]
        assert migrate(conn, MIGRATIONS[:1]) == []
        assert migrate(conn) == list(range(2, LATEST + 1))  # an old database upgraded
        assert migrate(conn) == []
        with pytest.raises(SchemaTooNew):
            migrate(conn, MIGRATIONS[:1])
        with pytest.raises(ValueError):
            migrate(conn, MIGRATIONS[::-1])
    assert PostgresGallery(postgres_url).schema_version() == LATEST


def test_a_failed_migration_leaves_the_previous_version(postgres_url):
    from facebot.storage.migrations import Migration

    broken = (*MIGRATIONS, Migration(LATEST + 1, "broken", "CREATE TABLE half (x int); SELECT no_such_function()"))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error):
            migrate(conn, broken)
    # All or nothing: not even the first migrations stayed, since they ran in one transaction.
    assert sql(postgres_url, "SELECT to_regclass('half'), to_regclass('schema_version')") == [(None, None)]


def test_processes_opening_a_new_database_at_once_migrate_it_once(postgres_url):
    code = ("import sys; from facebot.storage import open_gallery;"
            "g = open_gallery(database_url=sys.argv[1]); g.audit('start', 'p'); print(g.schema_version())")
    procs = [subprocess.Popen([sys.executable, "-c", code, postgres_url], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4 and outputs == [str(LATEST)] * 4
    assert sql(postgres_url, "SELECT count(*) FROM schema_version") == [(LATEST,)]
    assert sql(postgres_url, "SELECT count(*) FROM audit") == [(4,)]


# -- storage details ---------------------------------------------------------------------------
def test_embeddings_are_float32_bytes_and_nothing_else_is_binary(postgres_url):
    g = open_gallery(database_url=postgres_url)
    g.add_samples([(f"person {i}", unit(i)) for i in range(5)])
    g.audit("identify", "tg:1", faces=1, names=["person 1"])
    stored = sql(postgres_url, "SELECT embedding FROM samples ORDER BY id")
    assert [bytes(e) for (e,) in stored] == [unit(i).astype("<f4").tobytes() for i in range(5)]
    binary = sql(postgres_url, "SELECT table_name, column_name FROM information_schema.columns "
                               "WHERE table_schema = 'public' AND data_type = 'bytea'")
    assert binary == [("samples", "embedding")]


def test_refresh_fetches_only_what_changed(postgres_url, caplog):
    reader, writer = PostgresGallery(postgres_url), PostgresGallery(postgres_url)
    writer.add_samples([(f"person {i}", v) for i, v in enumerate(units(300))])
    with caplog.at_level(logging.DEBUG, logger="facebot.storage.postgres"):
        assert len(reader.embeddings()[0]) == 300
        writer.add_samples([("late", unit(1000))])
        writer.delete("person 7")
        names, matrix = reader.embeddings()
    loads = [r.getMessage() for r in caplog.records if "new sample(s)" in r.getMessage()]
    assert loads[0].endswith("300 new sample(s) (full load)") and loads[1].endswith(": 1 new sample(s)")
    expected = [f"person {i}" for i in range(300) if i != 7] + ["late"]
    assert names == expected and np.array_equal(matrix[-1], unit(1000))
    assert np.array_equal(matrix[:7], units(300)[:7]) and np.array_equal(matrix[7:299], units(300)[8:])


def test_a_matrix_handed_out_never_changes_under_its_holder(postgres_url):
    """New rows are written after the old ones in one buffer; what a Matcher holds stays put."""
    reader, writer = PostgresGallery(postgres_url), PostgresGallery(postgres_url)
    writer.add_samples([(f"person {i}", v) for i, v in enumerate(units(10))])
    held_names, held = reader.embeddings()
    frozen = held.copy()
    for i in range(6):
        writer.add_samples([(f"more {i}", unit(i))])
        reader.embeddings()  # appended in place, after the held rows
    writer.add_samples([(f"bulk {i}", v) for i, v in enumerate(units(2000, seed=5))])  # past the buffer: it grows
    names, matrix = reader.embeddings()
    assert np.array_equal(held, frozen) and len(held_names) == 10
    assert len(names) == 2016 and np.array_equal(matrix[:10], frozen) and np.array_equal(matrix[-1], units(2000, seed=5)[-1])
    writer.delete("person 0")
    assert np.array_equal(reader.embeddings()[1], np.concatenate([frozen[1:], matrix[10:]]))
    assert np.array_equal(held, frozen)


def test_a_replaced_database_is_reloaded_whole(postgres_server, postgres_url):
    """Another database behind the same URL (a restore, a copy) has another gallery id."""
    reader = PostgresGallery(postgres_url)
    reader.add_samples([("Ana", unit(1))])
    assert reader.embeddings()[0] == ["Ana"]
    sql(postgres_url, "UPDATE gallery_version SET gallery_id = 'restored', version = 0")
    sql(postgres_url, "DELETE FROM people")
    assert reader.embeddings()[0] == []


def test_expired_audit_entries_are_found_by_an_index(postgres_url):
    """Every audit write deletes the expired entries (tests/test_privacy.py, on both stores);
    here: it finds them through the index on time, not by reading the whole table."""
    g = PostgresGallery(postgres_url)
    g.audit("start", "cli")
    sql(postgres_url, "INSERT INTO audit (time, action, actor) SELECT now() - interval '1 day' * (i % 300), "
                      "'identify', 'tg:1' FROM generate_series(1, 50000) AS i")
    sql(postgres_url, "ANALYZE audit")
    plan = "\n".join(r[0] for r in sql(postgres_url, "EXPLAIN DELETE FROM audit WHERE time < now() - make_interval(secs => 31536000)"))
    assert "audit_time" in plan, plan


def test_passwords_never_appear_in_messages(postgres_server, postgres_url):
    assert redact_url("postgresql://bob:s3cret@db.example:5432/fb") == "postgresql://bob:***@db.example:5432/fb"
    assert redact_url("postgresql://db/fb?user=bob&password=s3cret") == "postgresql://db/fb?user=bob&password=***"
    assert redact_url("host=db password='a b' user=x") == "host=db password=*** user=x"
    assert redact_url("postgresql://db.example/fb") == "postgresql://db.example/fb"
    with_secret = postgres_url.replace("facebot@", "facebot:s3cret@")
    g = open_gallery(database_url=with_secret)
    g.add_samples([("Ana", unit(1))])  # the test server trusts any password
    assert "s3cret" not in repr(g) and "s3cret" not in g.url and "***" in g.url
    closed = f"postgresql://facebot:s3cret@127.0.0.1:{postgres_server.port + 1}/x"
    with pytest.raises(GalleryUnavailable) as caught:
        open_gallery(database_url=closed).people()
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)
    assert isinstance(caught.value, GalleryBusy)  # every face already answers "busy, try again"


def test_a_writer_waiting_too_long_gets_gallery_busy(postgres_url, monkeypatch):
    import facebot.storage.postgres as postgres

    monkeypatch.setattr(postgres, "LOCK_TIMEOUT_S", 0.3)
    g = PostgresGallery(postgres_url)
    g.add_samples([("Ana", unit(1))])
    with psycopg.connect(postgres_url) as other:  # holds the change counter, like a stuck writer
        other.execute("UPDATE gallery_version SET version = version + 1")
        started = time.monotonic()
        with pytest.raises(GalleryBusy):
            g.add_samples([("Bob", unit(2))])
        assert time.monotonic() - started < 5
        assert g.people()[0].name == "Ana"  # reads do not wait for writers
        other.rollback()
    g.add_samples([("Bob", unit(2))])
    assert [p.name for p in g.people()] == ["Ana", "Bob"]


def test_a_lost_connection_is_reopened(postgres_url):
    g = PostgresGallery(postgres_url)
    g.add_samples([("Ana", unit(1))])
    kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'facebot'"
    sql(postgres_url, kill)
    assert [p.name for p in g.people()] == ["Ana"]  # a read reconnects and tries again
    sql(postgres_url, kill)
    with pytest.raises(GalleryUnavailable):  # a write is never repeated blindly
        g.add_samples([("Bob", unit(2))])
    g.add_samples([("Bob", unit(2))])  # the next call reconnects
    assert [(p.name, p.samples) for p in g.people()] == [("Ana", 1), ("Bob", 1)]


def test_open_gallery_picks_the_store(tmp_path, postgres_url):
    assert isinstance(open_gallery(tmp_path), Gallery)
    assert isinstance(open_gallery(tmp_path, database_url=postgres_url), PostgresGallery)  # the URL wins
    assert isinstance(open_gallery(tmp_path, database_url=""), Gallery)
    assert open_gallery(database_url=postgres_url, features="x").features == "x"
    assert isinstance(open_gallery(tmp_path), storage.Store) and isinstance(open_gallery(database_url=postgres_url),
                                                                             storage.Store)
    with pytest.raises(ValueError):
        open_gallery(database_url="mysql://x/y")
    with pytest.raises(ValueError):
        open_gallery()


# -- moving a gallery --------------------------------------------------------------------------
def small_gallery(folder: Path) -> Gallery:
    """Two kinds of features, a deleted person, settings and audit entries."""
    g = Gallery(folder)
    g.add_samples([("Ana María", unit(1)), ("Bob", unit(2)), ("ana maría", unit(3))], actor="cli:hr")
    Gallery(folder, features="siamese-scratch-1").add_samples([("Bob", unit(4)), ("Zoë", unit(5))], actor="tg:7")
    g.add_samples([("Gone", unit(6))])
    g.delete("Gone")
    g.set_setting("threshold", 0.7)
    g.set_setting("threshold:siamese", 1.1)
    for i in range(12):
        g.audit("identify", f"tg:{i}", faces=i % 3, names=["Bob"] * (i % 3))
    return g


def test_db_copy_round_trips_a_gallery_both_ways(tmp_path, postgres_url, db_cli):
    source = small_gallery(tmp_path / "a")
    code, out, err = db_cli("db", "copy", "--from", tmp_path / "a", "--to", postgres_url)
    assert code == 0, err
    assert "copied 3 people, 5 samples, 2 settings and 12 audit entries" in out and "verified" in out
    code, out, err = db_cli("db", "copy", "--from", postgres_url, "--to", tmp_path / "b")
    assert code == 0 and "verified" in out, err
    original, there, back = dump_gallery(source), dump_gallery(open_gallery(database_url=postgres_url)), \
        dump_gallery(Gallery(tmp_path / "b"))
    for copy in (there, back):
        assert copy.summary() == original.summary()
        assert sorted(copy.people) == sorted(original.people)  # names, creation times and actors
        assert copy.samples == original.samples  # same order, bytes, features, times, actors
        assert copy.settings == original.settings and copy.audit == original.audit
    for features in (source.features, "siamese-scratch-1"):
        a = Gallery(tmp_path / "a", features=features).embeddings()
        for other in (open_gallery(database_url=postgres_url, features=features), Gallery(tmp_path / "b", features=features)):
            names, matrix = other.embeddings()
            assert names == a[0] and np.array_equal(matrix, a[1])
    assert [(p.name, p.samples, p.created) for p in Gallery(tmp_path / "b").people()] == \
        [(p.name, p.samples, p.created) for p in source.people()]
    code, out, err = db_cli("--database-url", postgres_url, "db", "status", "--json")
    status = json.loads(out)
    assert status["store"] == "postgresql" and status["people"] == 3 and status["samples"] == 5
    assert status["schema_version"] == LATEST and status["per_features"] == {source.features: 3, "siamese-scratch-1": 2}


def test_db_copy_refuses_a_target_that_is_not_empty(tmp_path, postgres_url, db_cli):
    small_gallery(tmp_path / "a")
    open_gallery(database_url=postgres_url).add_samples([("Eve", unit(9))])
    code, _, err = db_cli("db", "copy", "--from", tmp_path / "a", "--to", postgres_url)
    assert code == 1 and "already holds a gallery" in err
    assert [p.name for p in open_gallery(database_url=postgres_url).people()] == ["Eve"]
    with pytest.raises(TargetNotEmpty):
        copy_gallery(postgres_url, tmp_path / "a")
    code, _, err = db_cli("--database-url", "", "db", "init")
    assert code == 1 and "no database" in err


@pytest.mark.slow
def test_copy_of_ten_thousand_people_keeps_counts_and_nearest_person(tmp_path, postgres_url):
    """10,000 people, one sample each, to PostgreSQL and back: same counts, and 500 noisy
    probes find the same nearest person in all three."""
    vectors = units(10_000, seed=1)
    Gallery(tmp_path / "a").add_samples([(f"person {i:05d}", v) for i, v in enumerate(vectors)], actor="bench")
    there, back = copy_gallery(tmp_path / "a", postgres_url), copy_gallery(postgres_url, tmp_path / "b")
    assert there.ok and back.ok and there.target.people == back.target.people == 10_000
    probes = vectors[:500] + 0.05 * units(500, seed=2)
    nearest = []
    for store in (Gallery(tmp_path / "a"), open_gallery(database_url=postgres_url), Gallery(tmp_path / "b")):
        names, matrix = store.embeddings()
        nearest.append([names[j] for j in np.argmax(probes @ matrix.T, axis=1)])  # unit rows: max dot = min L2
    assert nearest[0] == nearest[1] == nearest[2] and nearest[0][:3] == ["person 00000", "person 00001", "person 00002"]


# -- many processes, one killed ----------------------------------------------------------------
WORKER = r'''
import json, os, sys, time
import numpy as np
from facebot.storage.names import name_key
from facebot.storage.postgres import PostgresGallery

role, url, tag, start_at, stop_at, finish = sys.argv[1:7]
start_at, stop_at = float(start_at), float(stop_at)
NAMES = [f"Person {i}" for i in range(40)]
g = PostgresGallery(url)   # the audit keeps every entry of the last year: the test counts them
g.version                                  # connect (and migrate) before the clock starts
rng = np.random.default_rng(abs(hash(tag)) % 2**32)

def unit():
    v = rng.normal(size=512).astype(np.float32)
    return v / np.linalg.norm(v)

def say(*words):
    print(*words, flush=True)

def view():
    names, matrix = g.embeddings()
    return {"version": list(g.version), "people": [[p.name, p.samples] for p in g.people()],
            "rows": len(names), "names": names, "sum": float(np.asarray(matrix, np.float64).sum())}

time.sleep(max(0.0, start_at - time.time()))
seq, seen = 0, {}
while time.time() < stop_at:
    seq += 1
    if role == "camera":                     # a sighting per frame; refreshes its matrix now and then
        g.audit("camera", f"camera:{tag}", seq=seq, name=NAMES[seq % 40])
        say("ack", seq)
        if seq % 25 == 0:
            g.embeddings()
    elif role == "cli":                      # enrollment after enrollment, names in any case
        name = NAMES[seq % 40]
        name = name.upper() if seq % 3 == 0 else name.lower() if seq % 3 == 1 else name
        counts = g.add_samples([(name, unit())], actor="cli:load")
        (shown, count), = counts.items()
        say("ack", json.dumps([name_key(shown), count, time.time()]))
        time.sleep(0.02)
    elif role == "bot":                      # polls for changes; HR enrolls the same names now and then
        if g.version != seen.get("version"):
            seen["version"] = g.version
            names, _ = g.embeddings()
            counts = {}
            for n in names:
                counts[name_key(n)] = counts.get(name_key(n), 0) + 1
            changed = {k: c for k, c in counts.items() if seen.get(k) != c}
            seen.update(changed)
            say("seen", json.dumps([time.time(), changed]))
        if seq % 25 == 0:
            counts = g.add_samples([(NAMES[seq % 40].swapcase(), unit())], actor="tg:hr")
            (shown, count), = counts.items()
            say("ack", json.dumps([name_key(shown), count, time.time()]))
        time.sleep(0.02)
say("done")
while not os.path.exists(finish):
    time.sleep(0.05)
say("final", json.dumps(view()))
'''


def _lines(path: Path) -> list[tuple[str, object]]:
    """A worker's output as (kind, JSON value) pairs: ("ack", 12), ("seen", [time, {...}]), ...

    Whole lines only: a worker killed mid-print can leave a last line cut short ("ack" without
    its number, when the output buffer filled between the words), which acknowledged nothing."""
    text = path.read_text()
    pairs = []
    for line in text[: text.rfind("\n") + 1].splitlines():
        kind, _, rest = line.partition(" ")
        pairs.append((kind, json.loads(rest) if rest else None))
    return pairs


def test_many_processes_one_killed_mid_write_lose_nothing(tmp_path, postgres_url):
    """A bot (reader that also enrolls), three cameras (audit writers) and a CLI enrolling
    share one database for 10 s; one camera is SIGKILLed half-way. Every acknowledged write
    is in the database, no person is duplicated, enrollments reach the bot within a second,
    and every surviving process ends with the same gallery as a fresh reader."""
    PostgresGallery(postgres_url).version  # schema in place before the workers start
    duration, start_at = 10.0, time.time() + 4.0  # time for five interpreters to start on 2 cores
    finish = tmp_path / "finish"
    roles = {"bot": "bot", "cam1": "camera", "cam2": "camera", "cam3": "camera", "cli": "cli"}
    procs, outs = {}, {}
    for tag, role in roles.items():
        outs[tag] = tmp_path / f"{tag}.out"
        procs[tag] = subprocess.Popen([sys.executable, "-c", WORKER, role, postgres_url, tag, repr(start_at),
                                       repr(start_at + duration), str(finish)],
                                      stdout=open(outs[tag], "w"), stderr=subprocess.STDOUT)
    try:
        time.sleep(max(0.0, start_at + duration / 2 - time.time()))
        assert procs["cam2"].poll() is None, outs["cam2"].read_text()[-2000:]
        os.kill(procs["cam2"].pid, signal.SIGKILL)  # mid-write: a camera does nothing but write
        procs["cam2"].wait(timeout=10)
        survivors = [t for t in roles if t != "cam2"]
        deadline = time.time() + duration + 60
        while not all("done" in outs[t].read_text().split("\n") for t in survivors):
            assert time.time() < deadline and all(procs[t].poll() is None for t in survivors), \
                {t: outs[t].read_text()[-1500:] for t in survivors}
            time.sleep(0.1)
        finish.touch()
        assert all(procs[t].wait(timeout=60) == 0 for t in survivors), {t: outs[t].read_text()[-1500:] for t in survivors}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()

    lines = {t: _lines(outs[t]) for t in roles}
    # Cameras: every acknowledged audit entry is there exactly once; the killed camera may
    # have committed at most the one entry it had not acknowledged yet.
    audit = {}
    for actor, seq in sql(postgres_url, "SELECT actor, (details->>'seq')::int FROM audit WHERE action = 'camera'"):
        audit.setdefault(actor, []).append(seq)
    acked = {t: [seq for kind, seq in lines[t] if kind == "ack"] for t in ("cam1", "cam2", "cam3")}
    for t in ("cam1", "cam3"):
        assert sorted(audit[f"camera:{t}"]) == acked[t] and acked[t], t
    stored = sorted(audit["camera:cam2"])
    assert len(set(stored)) == len(stored) and set(acked["cam2"]) <= set(stored)
    assert set(stored) - set(acked["cam2"]) <= {len(acked["cam2"]) + 1}
    # Enrollments: one person per name however it was spelled, every acknowledged sample kept.
    enrolled = {}
    for t in ("cli", "bot"):
        for kind, value in lines[t]:
            if kind == "ack":
                key, count, _ = value
                enrolled.setdefault(key, []).append(count)
    people = sql(postgres_url, "SELECT p.key, count(s.id) FROM people p LEFT JOIN samples s ON s.person_key = p.key "
                               "GROUP BY p.key")
    assert {k: n for k, n in people} == {k: len(c) for k, c in enrolled.items()}
    assert all(sorted(c) == list(range(1, len(c) + 1)) for c in enrolled.values())  # each count acknowledged once
    assert len(people) == 40
    # The bot saw each enrollment within a second of its acknowledgement (those acknowledged
    # in the last second are left out: the bot stops watching at the end of the run).
    seen = [value for kind, value in lines["bot"] if kind == "seen"]
    lags = []
    for kind, value in lines["cli"]:
        if kind == "ack" and value[2] < start_at + duration - 1.0:
            key, count, acked_at = value
            first = next(t for t, changed in seen if changed.get(key, 0) >= count)
            lags.append(max(0.0, first - acked_at))
    # Everyone ends with the same gallery as a fresh reader.
    finals = {t: next(value for kind, value in lines[t] if kind == "final") for t in survivors}
    fresh = PostgresGallery(postgres_url)
    names, matrix = fresh.embeddings()
    expected = {"version": list(fresh.version), "people": [[p.name, p.samples] for p in fresh.people()],
                "rows": len(names), "names": names, "sum": float(np.asarray(matrix, np.float64).sum())}
    assert all(final == expected for final in finals.values())
    total_audit = sum(len(v) for v in audit.values())
    print(f"\nload test: {duration:.0f} s, {total_audit} camera audit entries "
          f"({len(acked['cam1'])}, {len(acked['cam2'])} before SIGKILL, {len(acked['cam3'])}); "
          f"{sum(len(c) for c in enrolled.values())} enrollments ({len(lags)} by the CLI) into 40 people; "
          f"bot saw CLI enrollments after median {np.median(lags) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms; "
          f"killed camera: {len(acked['cam2'])} acknowledged, {len(stored)} stored")
    assert max(lags) < 1.0


def test_an_enrollment_by_the_command_line_is_named_by_a_running_service_within_a_second(
        postgres_url, recognizer, samples, monkeypatch, capsys):
    """The bot (or a camera) on one host holds the gallery in memory; HR enrolls from the
    command line on another: the next identification already names the person."""
    import time

    import facebot.recognition as recognition
    from facebot.cli.main import main
    from facebot.recognition import load_image
    from facebot.service import open_service

    running = open_service(None, database_url=postgres_url, recognizer=recognizer)
    photo = load_image(samples / "s2" / "9.jpg")
    assert [r.known for r in running.identify(photo)] == [False]  # its matrix is built, with nobody in it
    monkeypatch.setattr(recognition, "Recognizer", lambda *a, **k: recognizer)  # the CLI's models: already loaded
    assert main(["--database-url", postgres_url, "enroll", "Ana", str(samples / "s2" / "1.jpg"),
                 "--consent", "test photo"]) == 0
    enrolled_at = time.monotonic()
    [face] = running.identify(photo)
    assert face.name == "Ana" and face.known and time.monotonic() - enrolled_at < 1.0
    assert "enrolled Ana" in capsys.readouterr().out


def test_the_command_line_names_the_database_it_used_not_the_unused_folder(postgres_url, recognizer, samples,
                                                                            monkeypatch, capsys, tmp_path):
    """With --database-url, `calibrate` says the rule was saved in that database (it used to
    name ./data, a folder it never touched), and `identify` on an empty gallery names it too."""
    import facebot.recognition as recognition
    from facebot.cli.main import main
    from facebot.storage.postgres import redact_url

    monkeypatch.setattr(recognition, "Recognizer", lambda *a, **k: recognizer)
    monkeypatch.chdir(tmp_path)
    assert main(["--database-url", postgres_url, "identify", str(samples / "s2" / "1.jpg")]) == 0
    err = capsys.readouterr().err
    assert f"nobody is enrolled yet in {redact_url(postgres_url)}" in err
    assert main(["--database-url", postgres_url, "calibrate", str(samples), "--far", "0.05"]) == 0
    out = capsys.readouterr().out
    assert f"saved in {redact_url(postgres_url)}:" in out and "saved in data" not in out
    assert not (tmp_path / "data").exists()


def test_a_database_stopped_and_started_again_costs_the_answers_meanwhile_not_a_restart(postgres_server, recognizer,
                                                                                     samples):
    """The database server stops while a photo is being looked at (an upgrade, a failover).
    That photo's faces are not named unchecked (whether the person was erased meanwhile
    cannot be asked) and neither is the next one's: each gets GalleryUnavailable, which the
    bot and the camera turn into "try again" and a skipped frame. Once the server is back,
    the same service names and audits again, with no restart."""
    from facebot.recognition import load_image
    from facebot.service import open_service
    from tests.postgres_server import PostgresServer, find_bindir

    server = PostgresServer(find_bindir()).start()  # its own: stopping the session's would stop other tests
    try:
        url = server.url(server.create_database())
        service = open_service(None, database_url=url, recognizer=recognizer)
        service.enroll("Ana", load_image(samples / "s2" / "1.jpg"), actor="hr", consent="form 7")

        class StopsTheServer:
            """The recognizer, with the server stopped while it looks at the photo."""

            def __getattr__(self, name):
                return getattr(recognizer, name)

            def identify(self, *args, **kwargs):
                result = recognizer.identify(*args, **kwargs)
                server.halt()
                return result

        service.recognizer = StopsTheServer()
        with pytest.raises(GalleryUnavailable):
            service.identify(load_image(samples / "s2" / "5.jpg"), actor="tg:1")
        service.recognizer = recognizer
        with pytest.raises(GalleryUnavailable):
            service.identify(load_image(samples / "s2" / "9.jpg"), actor="tg:1")
        server.resume()
        assert [f.label for f in service.identify(load_image(samples / "s2" / "9.jpg"), actor="tg:1")] == ["Ana"]
        assert [(e["action"], e["actor"]) for e in service.audit_log(1)] == [("identify", "tg:1")]
    finally:
        server.stop()
