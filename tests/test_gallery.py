"""The gallery on its own: people, compact samples, atomic writes, sharing between processes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from facebot.storage import Gallery, InvalidName, UnknownPerson, validate_name
from facebot.storage.atomic import AtomicJSONStorage


def unit(seed: int, dim: int = 512) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_enroll_list_and_delete(tmp_path):
    g = Gallery(tmp_path)
    assert g.add_samples([("Ana María", unit(1))]) == {"Ana María": 1}
    assert g.add_samples([("ana maría", unit(2)), ("Bob", unit(3))]) == {"Ana María": 2, "Bob": 1}
    assert [(p.name, p.samples) for p in g.people()] == [("Ana María", 2), ("Bob", 1)]
    assert g.delete("ANA MARÍA") == 2
    assert [p.name for p in g.people()] == ["Bob"]
    names, matrix = g.embeddings()
    assert names == ["Bob"] and np.allclose(matrix[0], unit(3))
    with pytest.raises(UnknownPerson):
        g.delete("Ana María")


def test_embeddings_are_stored_compactly_and_exactly(tmp_path):
    g = Gallery(tmp_path)
    g.add_samples([(f"person {i}", unit(i)) for i in range(50)])
    raw = json.loads((tmp_path / "gallery.json").read_text())
    sample = next(iter(raw["samples"].values()))
    assert isinstance(sample["embedding"], str) and len(sample["embedding"]) < 2800
    assert (tmp_path / "gallery.json").stat().st_size < 50 * 3200
    names, matrix = Gallery(tmp_path).embeddings()
    assert np.array_equal(matrix[names.index("person 7")], unit(7))


def test_no_photo_is_ever_stored(tmp_path):
    g = Gallery(tmp_path)
    g.add_samples([("Ana", unit(1))])
    g.audit("identify", "tg:1", faces=1, names=["Ana"])
    stored = {p.name for p in tmp_path.iterdir()}
    assert stored <= {"gallery.json", "audit.json", ".lock"}


def test_invalid_names_change_nothing(tmp_path):
    g = Gallery(tmp_path)
    g.add_samples([("Ana", unit(1))])
    before = (tmp_path / "gallery.json").read_bytes()
    for bad in ["", "   ", "x" * 65, "Ana\x00", "Bob\nSmith", "Eve\u202e", "<b>Mallory</b>"]:
        with pytest.raises(InvalidName):
            g.add_samples([("Carl", unit(2)), (bad, unit(3))])
    assert (tmp_path / "gallery.json").read_bytes() == before


def test_names_are_cleaned():
    assert validate_name("  Ana   María ") == "Ana María"
    assert validate_name("x" * 64) == "x" * 64
    assert validate_name("José Ñúñez-O'Brien") == "José Ñúñez-O'Brien"


def test_writes_leave_no_temporary_files_and_survive_a_failed_transaction(tmp_path):
    g = Gallery(tmp_path)
    g.add_samples([("Ana", unit(1))])
    with pytest.raises(RuntimeError):
        with g._transaction():
            g._table("samples").insert({"key": "ghost", "embedding": "", "model": g.features})
            raise RuntimeError("crash in the middle")
    assert [p.samples for p in g.people()] == [1]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_second_process_sees_changes_without_restarting(tmp_path):
    reader = Gallery(tmp_path)
    assert reader.embeddings()[0] == []
    code = (
        "import numpy as np, sys; from facebot.storage import Gallery;"
        "Gallery(sys.argv[1]).add_samples([('Zoe', np.ones(512, np.float32) / np.sqrt(512))])"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=os.getcwd())
    names, matrix = reader.embeddings()
    assert names == ["Zoe"] and matrix.shape == (1, 512)


def test_concurrent_writers_lose_nothing(tmp_path):
    code = (
        "import numpy as np, sys; from facebot.storage import Gallery; g = Gallery(sys.argv[1]);"
        "[g.add_samples([(f'{sys.argv[2]} {i}', np.ones(8, np.float32))]) for i in range(15)]"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), tag]) for tag in ("a", "b", "c")]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(Gallery(tmp_path).people()) == 45


def test_settings_and_audit(tmp_path):
    g = Gallery(tmp_path)
    assert g.get_setting("threshold", 0.75) == 0.75
    g.set_setting("threshold", 0.7)
    g.set_setting("threshold", 0.65)
    assert Gallery(tmp_path).get_setting("threshold") == 0.65
    for i in range(5):
        g.audit("identify", f"tg:{i}", faces=1)
    log = g.audit_log(3)
    assert [e["actor"] for e in log] == ["tg:2", "tg:3", "tg:4"]
    assert all("time" in e for e in log)


def test_storage_reloads_only_when_the_file_changes(tmp_path):
    storage = AtomicJSONStorage(tmp_path / "db.json")
    storage.write({"t": {"1": {"a": 1}}})
    first = storage.read()
    assert storage.read() is first  # unchanged file: no re-parse
    other = AtomicJSONStorage(tmp_path / "db.json")
    other.write({"t": {"1": {"a": 2}}})
    assert storage.read()["t"]["1"]["a"] == 2
