"""Data protection: faces are special-category data (GDPR Art. 9, Illinois BIPA).

- consent: who consented, when and for what is stored with every sample, required by the
  command line, shown by `facebot samples NAME`, and in the audit log;
- erasure: deleting a person removes their samples and replaces their name in the audit
  log with a random pseudonym; afterwards the name is nowhere in the data folder (every
  file grepped) or the database (every table searched);
- export: everything stored about a person as JSON (a data-subject access request);
- retention: audit entries expire after FACEBOT_RETENTION_DAYS days, enforced on every
  audit write; refusals are kept like everything else and nothing is pruned by count.

Storage behaviour runs on both stores (`store`: TinyDB files and a real PostgreSQL), as in
tests/test_gallery.py; the command line runs in-process on a TinyDB folder (`cli`).
"""
from __future__ import annotations

import base64
import json
import logging
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import psycopg
import pytest

from facebot.storage import Gallery, UnknownPerson, copy_gallery, open_gallery
from facebot.storage.store import GalleryDump, dump_gallery, load_gallery
from tests.test_gallery import StoreUnderTest, unit

CONSENT = "Zoë Erasmus-Quill signed form HR-7 on 2026-11-20: door access and attendance"


@pytest.fixture(params=["tinydb", "postgres"])
def store(request, tmp_path) -> StoreUnderTest:
    """A fresh empty gallery: a temporary folder, or a fresh database on the test server."""
    if request.param == "postgres":
        return StoreUnderTest("postgres", request.getfixturevalue("postgres_url"))
    return StoreUnderTest("tinydb", str(tmp_path / "gallery"))


# -- consent and purpose ----------------------------------------------------------------------
def test_consent_is_stored_with_each_sample(store):
    g = store.open()
    g.add_samples([("Zoë Erasmus-Quill", unit(1)), ("zoë erasmus-quill", unit(2))], actor="cli:hr", consent=CONSENT)
    g.add_samples([("Zoë Erasmus-Quill", unit(3))], actor="tg:42")  # the bot, before its consent button
    g.add_samples([("Bob", unit(4))], actor="cli:hr", consent="Bob, form HR-8")
    samples = store.open().samples_of("ZOË  erasmus-quill")
    assert [(s.created_by, s.consent) for s in samples] == [("cli:hr", CONSENT), ("cli:hr", CONSENT), ("tg:42", None)]
    assert len({s.id for s in samples}) == 3 and all(s.created.endswith("+00:00") for s in samples)
    assert all(s.features == g.features and s.embedding is None for s in samples)
    with_vectors = g.samples_of("Zoë Erasmus-Quill", embeddings=True)
    assert np.array_equal(np.frombuffer(with_vectors[2].embedding, "<f4"), unit(3))
    with pytest.raises(UnknownPerson):
        g.samples_of("Carl")


def test_db_copy_keeps_consent_and_checks_it(tmp_path, postgres_url):
    source = Gallery(tmp_path / "a")
    source.add_samples([("Ana", unit(1))], actor="cli:hr", consent="Ana, form HR-1")
    source.add_samples([("Ana", unit(2)), ("Bob", unit(3))], actor="tg:1")
    assert copy_gallery(tmp_path / "a", postgres_url).ok and copy_gallery(postgres_url, tmp_path / "b").ok
    for copy in (open_gallery(database_url=postgres_url), Gallery(tmp_path / "b")):
        assert [s.consent for s in copy.samples_of("Ana")] == ["Ana, form HR-1", None]
        assert dump_gallery(copy).samples == dump_gallery(source).samples
    # The check compares consent too: a copy that lost it does not verify.
    lost = dump_gallery(source)
    lost.samples = [s._replace(consent=None) for s in lost.samples]
    assert lost.summary() != dump_gallery(source).summary()


def test_the_command_line_refuses_to_enroll_without_consent(cli, samples, tmp_path):
    for args in (["enroll", "Ana", samples / "s2" / "1.jpg"], ["enroll-dir", samples],
                 ["enroll", "Ana", samples / "s2" / "1.jpg", "--consent", "   "]):
        code, out, err = cli(*args)
        assert code == 2 and "--consent" in err and "who consented" in err and "nothing was enrolled" in err
    assert cli.loads == []  # refused before any model loaded
    assert Gallery(cli.data).people() == []


def test_consent_is_shown_by_samples_and_in_the_audit(cli, samples):
    code, out, err = cli("enroll", "Zoë Erasmus-Quill", samples / "s2" / "1.jpg", samples / "s2" / "5.jpg",
                         "--consent", CONSENT)
    assert code == 0, err
    code, out, err = cli("samples", "zoë erasmus-quill")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("Zoë Erasmus-Quill: 2 sample(s)")
    assert len(lines) == 3 and all(CONSENT in line and "cli:" in line and "20" in line for line in lines[1:])
    code, out, _ = cli("samples", "Zoë Erasmus-Quill", "--json")
    shown = json.loads(out)
    assert shown["name"] == "Zoë Erasmus-Quill" and [s["consent"] for s in shown["samples"]] == [CONSENT] * 2
    assert {"id", "created", "created_by", "consent", "features"} <= set(shown["samples"][0])
    assert "embedding" not in shown["samples"][0]
    [entry] = [json.loads(line) for line in cli("audit")[1].splitlines()]
    assert entry["action"] == "enroll" and entry["consent"] == CONSENT and entry["added"] == 2
    code, _, err = cli("samples", "Nobody")
    assert code == 1 and "nobody called" in err


def test_enroll_dir_records_the_consent_of_the_batch(cli, samples):
    code, out, err = cli("enroll-dir", samples, "--consent", "Georgia Tech face database, research licence")
    assert code == 0, err
    consents = {s.consent for p in Gallery(cli.data).people() for s in Gallery(cli.data).samples_of(p.name)}
    assert consents == {"Georgia Tech face database, research licence"}
    batches = [json.loads(line) for line in cli("audit")[1].splitlines()]
    assert batches and all(e["action"] == "enroll-batch" and e["consent"].startswith("Georgia Tech") for e in batches)


# -- erasure that erases ----------------------------------------------------------------------
NAME = "Zoë Erasmus-Quill"
TRACE = "erasmus-quill"  # in every spelling of the name (key, display, JSON-escaped), never in base64


def traces(store: StoreUnderTest) -> list[str]:
    """Where the erased name (any case) can still be found: files of the TinyDB folder
    (every byte, hidden files included), or rows of any table of the database."""
    if store.kind == "tinydb":
        return [p.name for p in Path(store.location).rglob("*") if p.is_file()
                and TRACE.encode() in p.read_bytes().lower()]
    with psycopg.connect(store.location, autocommit=True) as conn:
        tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return [t for t in tables if conn.execute(f'SELECT count(*) FROM "{t}" AS r WHERE lower(r::text) LIKE %s',
                                                  (f"%{TRACE}%",)).fetchone()[0]]


def erasure_entry(erasure):
    return "delete", {"name": erasure.pseudonym, "samples": erasure.samples}


def test_erasure_leaves_the_name_nowhere(store):
    """Deleting a person removes their samples and turns their name into one random
    pseudonym in every audit entry (structured fields and free text); other people's
    entries, even a name that starts the same, are untouched."""
    g = store.open()
    def enroll(consent):
        return lambda counts: ("enroll", {"name": next(iter(counts)), "consent": consent, "added": 1})

    g.add_samples([(NAME, unit(1))], actor="cli:hr", consent=CONSENT, audit=enroll(CONSENT))
    g.add_samples([("Zoë Erasmus", unit(2))], actor="cli:hr", consent="Zoë Erasmus, form HR-9",
                  audit=enroll("Zoë Erasmus, form HR-9"))
    g.add_samples([("zoë ERASMUS-quill", unit(3)), ("Bob", unit(4))], actor="tg:1",
                  audit=lambda counts: ("enroll-batch", {"people": sorted(counts), "samples": 2}))
    g.audit("identify", "tg:2", faces=3, names=[NAME, "Bob", "unknown"])
    g.audit("camera", "camera:door", name=NAME, distance=0.4)
    g.audit("identify", "tg:2", faces=1, names=["Zoë Erasmus"])
    g.audit("note", "cli:hr", text=f"called ZOË ERASMUS-QUILL about her badge")
    assert traces(store)  # the name is everywhere before
    erasures = []

    def entry(erasure):
        erasures.append(erasure)
        return erasure_entry(erasure)

    assert store.open().delete("ZOË ERASMUS-QUILL", actor="cli:hr", audit=entry) == 2
    assert traces(store) == []
    [erasure] = erasures
    assert erasure.name == NAME and erasure.samples == 2 and erasure.audit_entries == 5
    assert re.fullmatch(r"erased-[0-9a-f]{8}", erasure.pseudonym)
    log = g.audit_log(100)
    pseudonym = erasure.pseudonym
    assert [(e["action"], e.get("name"), e.get("names"), e.get("people")) for e in log] == [
        ("enroll", pseudonym, None, None), ("enroll", "Zoë Erasmus", None, None),
        ("enroll-batch", None, None, ["Bob", pseudonym]), ("identify", None, [pseudonym, "Bob", "unknown"], None),
        ("camera", pseudonym, None, None), ("identify", None, ["Zoë Erasmus"], None), ("note", None, None, None),
        ("delete", pseudonym, None, None)]
    assert log[0]["consent"] == CONSENT.replace(NAME, pseudonym) and log[1]["consent"] == "Zoë Erasmus, form HR-9"
    assert log[6]["text"] == f"called {pseudonym} about her badge"
    assert [p.name for p in g.people()] == ["Bob", "Zoë Erasmus"] and g.embeddings()[0] == ["Zoë Erasmus", "Bob"]
    # Random, not derived from the name: erasing the same name again gives another pseudonym.
    g.add_samples([(NAME, unit(5))])
    g.delete(NAME, audit=entry)
    assert erasures[1].pseudonym != pseudonym and traces(store) == []


def test_an_open_reader_drops_an_erased_person(store):
    """Readers holding the gallery in memory drop the erased person's rows at their next
    search (PostgreSQL: by the ids of the samples removed, since no name is kept)."""
    reader, writer = store.open(), store.open()
    writer.add_samples([(NAME, unit(1)), ("Bob", unit(2)), (NAME, unit(3))])
    assert reader.embeddings()[0] == [NAME, "Bob", NAME]
    writer.delete(NAME)
    names, matrix = reader.embeddings()
    assert names == ["Bob"] and np.array_equal(matrix, unit(2)[None])


def test_delete_on_the_command_line_erases_and_says_how(cli, samples):
    assert cli("enroll", NAME, samples / "s2" / "1.jpg", "--consent", CONSENT)[0] == 0
    assert cli("identify", samples / "s2" / "9.jpg")[0] == 0
    code, out, err = cli("delete", "zoë erasmus-quill")
    assert code == 0, err
    assert "1 sample(s) removed" in out and re.search(r"2 audit entries now say erased-[0-9a-f]{8}", out)
    assert [p.name for p in cli.data.iterdir() if TRACE.encode() in p.read_bytes().lower()] == []


def audit_names_anywhere(service, trace: str = TRACE) -> list[dict]:
    """The audit entries, through the service, that still hold `trace` (any case, any field)."""
    return [e for e in service.audit_log(10**6) if trace in json.dumps(e, ensure_ascii=False).lower()]


def photo_of_two(samples) -> "np.ndarray":
    """One photo: her (s2) on the left, Bob (s5) on the right."""
    from facebot.lab.demo import mosaic
    from facebot.recognition import load_image

    return mosaic([load_image(samples / "s2" / "9.jpg"), load_image(samples / "s5" / "5.jpg")], columns=2)


def enroll_her_and_bob(service, samples) -> None:
    from facebot.recognition import load_image

    service.enroll(NAME, load_image(samples / "s2" / "1.jpg"), actor="cli:hr", consent=CONSENT)
    service.enroll("Bob", load_image(samples / "s5" / "1.jpg"), actor="cli:hr", consent="Bob, form HR-8")


def test_an_identification_running_during_an_erasure_neither_names_nor_audits_her(service_on_each_store, samples,
                                                                                   monkeypatch, capsys):
    """The bot identifies a photo; while its faces are being matched (her nearest person
    found with the search built before), `facebot delete` erases her from another process.
    The answer calls her face unknown, and the identification's audit entry, written after
    the erasure, does not bring her name back."""
    from facebot.cli.main import main

    service = service_on_each_store
    enroll_her_and_bob(service, samples)
    matched: list[list[str]] = []
    search = service.recognizer.identify

    def erased_while_matching(rgb, matcher, rule):
        results = search(rgb, matcher, rule)
        matched.append(sorted(r.label for r in results))
        assert main([*service.cli_args, "delete", NAME]) == 0  # another process, between match and audit
        return results

    monkeypatch.setattr(service.recognizer, "identify", erased_while_matching)
    results = sorted(service.identify(photo_of_two(samples), actor="tg:7"), key=lambda r: r.box[0])
    assert matched == [sorted(["Bob", NAME])]  # the search did find her before the erasure
    assert [(r.name, r.known) for r in results] == [(None, False), ("Bob", True)]
    assert "erased-" in capsys.readouterr().out
    assert audit_names_anywhere(service) == []
    identify = service.audit_log(1)[0]
    assert (identify["action"], identify["actor"], sorted(identify["names"])) == ("identify", "tg:7", ["Bob", "unknown"])


def test_a_camera_event_after_an_erasure_does_not_name_her(service_on_each_store, samples):
    """The camera identifies a frame (not audited), then records its alert and the sighting
    a moment later; an erasure in between leaves both entries without her name."""
    service = service_on_each_store
    enroll_her_and_bob(service, samples)
    seen = {r.name: r for r in service.identify(photo_of_two(samples), audit=False)}
    assert seen[NAME].known and seen["Bob"].known
    service.erase(NAME, actor="tg:1")
    for name in (NAME, "Bob"):
        service.record_alert("door", name, seen[name].distance)
        service.record_sighting("door", name)
    assert audit_names_anywhere(service) == []
    entries = [(e["action"], e.get("name")) for e in service.audit_log(4)]
    assert entries == [("camera", None), ("sighting", None), ("camera", "Bob"), ("sighting", "Bob")]
    # The next frame is a stranger's (and Bob).
    assert sorted(r.label for r in service.identify(photo_of_two(samples), audit=False)) == ["Bob", "unknown"]


def test_the_check_costs_no_look_up_while_nobody_is_erased(service_on_each_store, samples, monkeypatch):
    """Identification is the hot path: with the gallery unchanged since its search was built,
    checking the people it matched reads the version only, never a person."""
    service = service_on_each_store
    enroll_her_and_bob(service, samples)
    photo = photo_of_two(samples)
    service.identify(photo)  # builds the search
    looked_up = []
    find = service.gallery.find
    monkeypatch.setattr(service.gallery, "find", lambda name: looked_up.append(name) or find(name))
    service.record_alert("door", "Bob", 0.5)
    assert sorted(r.label for r in service.identify(photo, actor="tg:7")) == ["Bob", NAME]
    assert looked_up == []
    service.enroll("Carl", load_sample(samples, "s11"), consent="Carl, HR-9")  # a change, erasing nobody
    looked_up.clear()
    assert sorted(r.label for r in service.identify(photo, audit=False)) == ["Bob", NAME]  # the next frame
    service.record_alert("door", "Bob", 0.5)  # Bob is in the search that frame rebuilt
    assert looked_up == []


def load_sample(samples, person: str) -> "np.ndarray":
    from facebot.recognition import load_image

    return load_image(samples / person / "1.jpg")


def test_samples_delete_removes_one_sample_on_the_command_line(cli, samples):
    assert cli("enroll", NAME, samples / "s2" / "1.jpg", samples / "s2" / "5.jpg", "--consent", CONSENT)[0] == 0
    assert cli("enroll", "Bob", samples / "s5" / "1.jpg", "--consent", "Bob, form HR-8")[0] == 0
    first, second = [s["id"] for s in json.loads(cli("samples", NAME, "--json")[1])["samples"]]
    [bobs] = [s["id"] for s in json.loads(cli("samples", "Bob", "--json")[1])["samples"]]
    listing = cli("samples", NAME)[1]
    assert f"#{first} " in listing and f"#{second} " in listing  # the id to pass to --delete

    code, out, err = cli("samples", "zoë erasmus-quill", "--delete", first)
    assert code == 0, err
    assert f"deleted sample #{first} of {NAME}" in out and "1 sample(s) left" in out
    assert [s["id"] for s in json.loads(cli("samples", NAME, "--json")[1])["samples"]] == [second]
    entry = json.loads(cli("audit", "1")[1])
    assert entry["action"] == "delete-sample" and entry["actor"].startswith("cli")
    assert (entry["name"], entry["sample"], entry["samples"], entry["consent"]) == (NAME, first, 1, CONSENT)

    stored = {p.name: p.read_bytes() for p in cli.data.iterdir()}
    for args, why in [((NAME, "--delete", 999_999), "no sample 999999"),
                      ((NAME, "--delete", bobs), f"no sample {bobs}"),  # Bob's, not hers
                      (("Nobody", "--delete", second), "nobody called")]:
        code, out, err = cli("samples", *args)
        assert code == 1 and out == "" and why in err and "nothing was deleted" in err
    assert {p.name: p.read_bytes() for p in cli.data.iterdir()} == stored

    code, out, err = cli("samples", NAME, "--delete", second, "--json")
    assert code == 0, err
    assert json.loads(out) == {"name": NAME, "samples": 0, "deleted": {
        "id": second, "created": json.loads(out)["deleted"]["created"], "created_by": json.loads(out)["deleted"]["created_by"],
        "consent": CONSENT}}
    assert [(p.name, p.samples) for p in Gallery(cli.data).people()] == [("Bob", 1), (NAME, 0)]  # she stays


# -- export (data-subject access request) -----------------------------------------------------
def test_export_gives_everything_stored_about_a_person(service_on_each_store, samples):
    from facebot.recognition import load_image

    service = service_on_each_store
    service.enroll(NAME, [load_image(samples / "s2" / "1.jpg"), load_image(samples / "s2" / "5.jpg")],
                   actor="cli:hr", consent=CONSENT)
    service.enroll("Bob", load_image(samples / "s5" / "1.jpg"), actor="cli:hr", consent="Bob, form HR-8")
    service.identify(load_image(samples / "s2" / "9.jpg"), actor="tg:7")  # names her
    service.identify(load_image(samples / "s5" / "5.jpg"), actor="tg:7")  # Bob only
    export = service.export("zoë erasmus-quill", actor="cli:dpo")
    assert json.loads(json.dumps(export, ensure_ascii=False)) == export  # plain JSON
    assert export["person"]["name"] == NAME and export["person"]["samples"] == 2
    assert [(s["created_by"], s["consent"]) for s in export["samples"]] == [("cli:hr", CONSENT)] * 2
    stored = service.gallery.samples_of(NAME, embeddings=True)
    assert [base64.b64decode(s["embedding"]) for s in export["samples"]] == [s.embedding for s in stored]
    assert "float32" in export["embedding_format"] and "photo" in export["photos"]
    assert [(e["action"], e["actor"]) for e in export["audit"]] == [("enroll", "cli:hr"), ("identify", "tg:7")]
    assert export["audit"][1]["names"] == [NAME]
    # The export itself is audited, and can leave the embeddings out.
    bare = service.export(NAME, actor="cli:dpo", embeddings=False)
    assert all("embedding" not in s for s in bare["samples"]) and "embedding_format" not in bare
    assert [(e["action"], e["actor"], e["embeddings"]) for e in bare["audit"][-1:]] == [("export", "cli:dpo", True)]
    assert service.audit_log(1)[0] == {**service.audit_log(1)[0], "action": "export", "name": NAME, "embeddings": False}


def test_export_on_the_command_line(cli, samples):
    assert cli("enroll", NAME, samples / "s2" / "1.jpg", "--consent", CONSENT)[0] == 0
    code, out, err = cli("export", "Zoë Erasmus-Quill")
    assert code == 0, err
    export = json.loads(out)
    assert export["person"]["name"] == NAME and len(export["samples"]) == 1
    assert np.frombuffer(base64.b64decode(export["samples"][0]["embedding"]), "<f4").shape == (512,)
    assert export["samples"][0]["consent"] == CONSENT and export["audit"][0]["action"] == "enroll"
    code, out, _ = cli("export", NAME, "--no-embeddings")
    assert code == 0 and "embedding" not in json.loads(out)["samples"][0]
    code, _, err = cli("export", "Nobody")
    assert code == 1 and "nobody called" in err


# -- retention by age --------------------------------------------------------------------------
def days_ago(days: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")


def aged_log(store: StoreUnderTest, entries: list[tuple[float, str]], **options):
    """The store opened with `options`, its audit log preloaded with (age in days, action)
    entries, oldest first (as `db copy` would bring them: a copy prunes nothing)."""
    g = store.open(**options)
    load_gallery(g, GalleryDump(audit=[{"time": days_ago(age), "action": action, "actor": "tg:9", "seq": i}
                                       for i, (age, action) in enumerate(entries)]))
    assert len(g.audit_log(10**6)) == len(entries)
    return g


def test_audit_entries_expire_after_the_retention_period(store):
    g = aged_log(store, [(400, "enroll"), (31, "refused"), (29.9, "refused"), (2, "identify")], retention_days=30)
    g.audit("identify", "tg:1", faces=0, names=[])  # every write prunes what has expired
    assert [(e["action"], e.get("seq")) for e in g.audit_log(100)] == [("refused", 2), ("identify", 3), ("identify", None)]


def test_a_change_prunes_expired_entries_too(store):
    """Changes write their entry in their own transaction: that write prunes too."""
    g = aged_log(store, [(10, "enroll"), (1, "identify")], retention_days=5)
    g.add_samples([("Ana", unit(1))], audit=lambda counts: ("enroll", {"name": "Ana"}))
    assert [e["action"] for e in g.audit_log(100)] == ["identify", "enroll"]


def test_the_audit_log_is_never_pruned_by_count(store):
    """A flood of refusals (12,000 in a day: more than the old 10,000-entry cap) pushes out
    nothing: the enrollment before it stays for its whole retention period."""
    g = aged_log(store, [(3, "enroll")] + [(1, "refused")] * 12_000)
    for _ in range(70):
        g.audit("refused", "tg:666", reason="not allowed")
    log = g.audit_log(10**6)
    assert len(log) == 12_071 and log[0]["action"] == "enroll"


def test_retention_days_comes_from_the_environment(store, monkeypatch):
    from facebot.storage.audit import DEFAULT_RETENTION_DAYS

    monkeypatch.delenv("FACEBOT_RETENTION_DAYS", raising=False)
    assert store.open().retention_days == DEFAULT_RETENTION_DAYS == 365
    monkeypatch.setenv("FACEBOT_RETENTION_DAYS", "7.5")
    assert store.open().retention_days == 7.5
    for bad in ("0", "-3", "a week", "nan", "inf"):
        monkeypatch.setenv("FACEBOT_RETENTION_DAYS", bad)
        with pytest.raises(ValueError, match="FACEBOT_RETENTION_DAYS"):
            store.open()


def test_tinydb_a_safety_cap_keeps_audit_json_bounded_and_says_so(tmp_path, monkeypatch, caplog):
    import facebot.storage.gallery as gallery

    monkeypatch.setattr(gallery, "AUDIT_SAFETY_CAP", 50)
    g = aged_log(StoreUnderTest("tinydb", str(tmp_path)), [(1, "identify")] * 60)
    with caplog.at_level(logging.WARNING, logger="facebot.storage.gallery"):
        g.audit("identify", "tg:1", faces=0)
    log = g.audit_log(1000)
    assert len(log) == 50 and log[0]["seq"] == 11 and log[-1]["actor"] == "tg:1"
    assert any("FACEBOT_RETENTION_DAYS" in r.getMessage() for r in caplog.records)
