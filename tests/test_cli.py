"""`facebot` as a user runs it: enroll, enroll-dir, identify, list, delete, threshold, demo."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facebot.cli.main import main
from facebot.lab.demo import mosaic
from facebot.recognition import load_image
from facebot.storage import Gallery
from tests.images import face_shrunk_to, jpeg_bytes, png_bomb, two_people

REPO = Path(__file__).resolve().parent.parent
CONSENT = ("--consent", "test photos of the Georgia Tech face database, research licence")  # required by enroll


def gallery_bytes(data: Path) -> bytes:
    path = data / "gallery.json"
    return path.read_bytes() if path.exists() else b""


def test_enroll_then_identify_another_photo(cli, samples):
    code, out, _ = cli("enroll", "Ana María", samples / "s2" / "1.jpg", *CONSENT)
    assert code == 0 and "enrolled Ana María" in out
    code, out, _ = cli("identify", samples / "s2" / "9.jpg")
    assert code == 0 and "Ana María" in out


def test_enrolling_an_existing_name_adds_a_sample(cli, samples):
    cli("enroll", "Ana", samples / "s2" / "1.jpg", *CONSENT)
    code, out, _ = cli("enroll", "ana", samples / "s2" / "5.jpg", samples / "s2" / "9.jpg", *CONSENT)
    assert code == 0 and "3 in all" in out
    code, out, _ = cli("list", "--json")
    assert json.loads(out) == [{"name": "Ana", "samples": 3, "created": json.loads(out)[0]["created"]}]


def test_enroll_refuses_a_face_that_belongs_to_someone_else(cli, samples):
    cli("enroll", "Ana", samples / "s2" / "1.jpg", *CONSENT)
    before = gallery_bytes(cli.data)
    code, _, err = cli("enroll", "Bea", samples / "s2" / "5.jpg", *CONSENT)
    assert code == 1 and "already matches Ana" in err
    assert gallery_bytes(cli.data) == before
    code, out, _ = cli("enroll", "Bea", samples / "s2" / "5.jpg", "--force", *CONSENT)
    assert code == 0 and "enrolled Bea" in out


def test_enroll_refuses_a_face_too_small_to_be_known_again(cli, samples, recognizer, tmp_path):
    """A face a few dozen pixels wide makes a sample that names its owner in about two
    of three photos (Georgia Tech, README): refused, with how to fix it; --force enrolls."""
    photo = load_image(samples / "s2" / "1.jpg")
    small = tmp_path / "far.jpg"
    small.write_bytes(jpeg_bytes(face_shrunk_to(photo, recognizer.faces(photo)[0].pixels, 36)))
    code, _, err = cli("enroll", "Ana", small, *CONSENT)
    assert code == 1 and "too small" in err and "px wide" in err and "nothing was enrolled" in err
    assert Gallery(cli.data).people() == []
    code, out, err = cli("enroll", "Ana", small, "--force", *CONSENT)
    assert code == 0 and "enrolled Ana" in out, err
    people = tmp_path / "people"
    (people / "Bea").mkdir(parents=True)
    small.rename(people / "Bea" / "1.jpg")
    code, out, _ = cli("enroll-dir", people, *CONSENT)
    assert code == 1 and "skipped 1" in out and "too small" in out


def test_a_small_enrollment_face_is_enrolled_with_a_note(cli, samples, recognizer, tmp_path):
    """A face between the gate (48 px) and 64 px makes a sample that names its owner less
    often (Georgia Tech, lab.small_faces): enrolled, with a note on stderr that a closer
    photo makes a better one; a big face gets no note, and enroll-dir lists the small ones."""
    photo = load_image(samples / "s2" / "1.jpg")
    small = tmp_path / "group_crop.jpg"
    small.write_bytes(jpeg_bytes(face_shrunk_to(photo, recognizer.faces(photo)[0].pixels, 58)))
    code, out, err = cli("enroll", "Ana", small, *CONSENT)
    assert code == 0 and "enrolled Ana" in out
    assert "px wide" in err and "closer photo" in err and str(small) in err
    code, out, err = cli("enroll", "Bea", samples / "s5" / "1.jpg", *CONSENT)
    assert code == 0 and "closer photo" not in err + out
    people = tmp_path / "people"
    (people / "Cid").mkdir(parents=True)
    other = load_image(samples / "s11" / "1.jpg")
    (people / "Cid" / "1.jpg").write_bytes(jpeg_bytes(face_shrunk_to(other, recognizer.faces(other)[0].pixels, 58)))
    code, out, _ = cli("enroll-dir", people, *CONSENT)
    assert code == 0 and "enrolled 1 photos" in out and "closer photo" in out and "Cid/1.jpg" in out, out


def test_enroll_refuses_a_face_cut_by_the_photos_edge(cli, samples, recognizer, tmp_path):
    """A face with a fifth of it outside the photo makes a sample that names its owner far
    less often (README, Enroll): refused, with how to fix it; --force enrolls."""
    from tests.images import face_cut_by_edge

    photo = load_image(samples / "s23" / "1.jpg")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(jpeg_bytes(face_cut_by_edge(photo, recognizer.faces(photo)[0].box, 0.3)))  # 79% inside
    code, _, err = cli("enroll", "Ana", cut, *CONSENT)
    assert code == 1 and "edge" in err and "whole face" in err and "nothing was enrolled" in err
    assert Gallery(cli.data).people() == []
    code, out, err = cli("enroll", "Ana", cut, "--force", *CONSENT)
    assert code == 0 and "enrolled Ana" in out, err
    slightly = tmp_path / "slightly.jpg"  # a face just touching the edge is taken
    slightly.write_bytes(jpeg_bytes(face_cut_by_edge(photo, recognizer.faces(photo)[0].box, 0.03)))
    code, out, err = cli("enroll", "Ana", slightly, *CONSENT)
    assert code == 0 and "2 in all" in out, err


@pytest.mark.parametrize("make, reason", [
    (lambda s: np.full((240, 320, 3), 180, np.uint8), "no face"),
    (lambda s: mosaic([load_image(s / "s2" / "1.jpg"), load_image(s / "s5" / "1.jpg")]), "2 faces"),
])
def test_enroll_needs_exactly_one_face(cli, samples, tmp_path, make, reason):
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes(make(samples)))
    cli("enroll", "Ana", samples / "s2" / "1.jpg", *CONSENT)
    before = gallery_bytes(cli.data)
    code, _, err = cli("enroll", "Bob", path, *CONSENT)
    assert code == 1 and reason in err and "nothing was enrolled" in err
    assert gallery_bytes(cli.data) == before


def test_enroll_takes_the_chosen_face_of_a_group_photo(cli, samples, tmp_path):
    """A photo of two people: refused with a hint, then `--face N` (biggest first, as
    `identify` numbers them) enrolls that one face only."""
    group = tmp_path / "group.jpg"
    group.write_bytes(jpeg_bytes(two_people(load_image(samples / "s2" / "1.jpg"), load_image(samples / "s5" / "1.jpg"))))
    code, _, err = cli("enroll", "Bea", group, *CONSENT)
    assert code == 1 and "2 faces" in err and "--face 1..2" in err
    code, out, err = cli("enroll", "Bea", group, "--face", "2", *CONSENT)
    assert code == 0 and "enrolled Bea" in out, err
    code, out, _ = cli("identify", samples / "s5" / "9.jpg")
    assert "Bea" in out
    code, out, _ = cli("identify", samples / "s2" / "9.jpg")
    assert "Bea" not in out
    code, _, err = cli("enroll", "Cid", group, "--face", "3", *CONSENT)
    assert code == 1 and "no face 3" in err and "2 faces" in err
    code, _, err = cli("enroll", "Cid", group, samples / "s2" / "1.jpg", "--face", "1", *CONSENT)
    assert code == 2 and "one photo" in err


def test_one_bad_photo_enrolls_nothing(cli, samples, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((samples / "s5" / "1.jpg").read_bytes()[:3000])
    code, _, err = cli("enroll", "Bob", samples / "s5" / "1.jpg", broken, *CONSENT)
    assert code == 1 and "truncated" in err
    assert Gallery(cli.data).people() == []


@pytest.mark.parametrize("name", ["", "x" * 65, "Bob\x07", "Bob\nDROP", "\u202eevil"])
def test_bad_names_are_refused(cli, samples, name):
    code, _, err = cli("enroll", name, samples / "s2" / "1.jpg", *CONSENT)
    assert code == 1 and "invalid name" in err
    assert cli.loads == []  # refused before loading any model
    assert Gallery(cli.data).people() == []


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"hello, I am a text file", "not a supported image"),
    (png_bomb(16000), "too large"),
])
def test_bad_files_are_refused_and_the_gallery_is_untouched(cli, samples, tmp_path, content, reason):
    cli("enroll", "Ana", samples / "s2" / "1.jpg", *CONSENT)
    before = gallery_bytes(cli.data)
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    code, _, err = cli("enroll", "Bob", bad, *CONSENT)
    assert code == 1 and reason in err
    assert gallery_bytes(cli.data) == before


def test_identify_json_every_face_and_errors(cli, samples, tmp_path):
    cli("enroll", "s2", samples / "s2" / "1.jpg", *CONSENT)
    cli("enroll", "s11", samples / "s11" / "1.jpg", *CONSENT)
    group = tmp_path / "group.jpg"
    group.write_bytes(jpeg_bytes(mosaic([load_image(samples / p / "13.jpg") for p in ("s2", "s5", "s11")], columns=3)))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    cli.loads.clear()
    code, out, _ = cli("identify", "--json", "--annotate", tmp_path / "ann", group, broken, samples / "s37" / "5.jpg")
    assert code == 1  # one image could not be read
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert [line["image"] for line in lines] == [str(group), str(broken), str(samples / "s37" / "5.jpg")]
    faces = sorted(lines[0]["faces"], key=lambda f: f["box"][0])
    assert [f["name"] for f in faces] == ["s2", None, "s11"]
    assert [f["known"] for f in faces] == [True, False, True]
    assert all(len(f["box"]) == 4 and isinstance(f["distance"], float) for f in faces)
    assert "error" in lines[1] and "faces" not in lines[1]
    assert lines[2]["faces"][0]["name"] is None  # s37 was never enrolled
    # what left a face unknown: a clause of the rule (decision.DecisionRule.refusal); null when named
    assert [f["unknown_because"] for f in faces][::2] == [None, None]
    assert faces[1]["unknown_because"] in ("far", "unclear", "background")
    assert cli.loads == ["mtcnn"]  # models loaded once for all three images
    assert (tmp_path / "ann" / "group.annotated.jpg").is_file()


def test_identify_before_anyone_is_enrolled_says_how_to_enroll(cli, samples):
    """A new user's first `identify` finds faces but nobody to compare them with: every face is
    unknown, and the command says why and what to run, on stderr (stdout stays the report)."""
    code, out, err = cli("identify", samples / "s2" / "1.jpg")
    assert code == 0 and "1. unknown" in out and "(nobody enrolled)" in out
    assert "nobody is enrolled yet" in err and "facebot enroll NAME PHOTO --consent NOTE" in err
    code, out, err = cli("identify", samples / "missing.jpg")  # no face looked at: nothing to explain
    assert code == 1 and "error" in out and "enrolled yet" not in err
    cli("enroll", "Ana", samples / "s2" / "1.jpg", *CONSENT)
    code, out, err = cli("identify", samples / "s2" / "5.jpg")
    assert "1. Ana" in out and "enrolled yet" not in err


def test_commands_that_only_read_make_no_gallery(cli, samples):
    """Run where no gallery is yet (a new user's first tries, or the wrong folder), the commands
    that only read answer as for an empty gallery and leave nothing behind; the first change
    makes the folder, private."""
    code, out, err = cli("identify", samples / "s2" / "1.jpg")
    assert code == 0 and "1. unknown" in out and "nobody is enrolled yet" in err
    assert cli("list") == (0, f"no one is enrolled yet (no gallery at {cli.data} yet)\n", "")
    assert cli("audit")[0] == 0
    assert cli("samples", "Ana")[0] == 1 and cli("export", "Ana")[0] == 1
    assert not cli.data.exists()
    assert cli("enroll", "Ana", samples / "s2" / "1.jpg", *CONSENT)[0] == 0
    assert cli.data.stat().st_mode & 0o777 == 0o700
    code, out, _ = cli("identify", samples / "s2" / "5.jpg")
    assert "1. Ana" in out


def test_db_status_says_when_there_is_no_gallery_folder_yet(cli, samples):
    """`facebot db status` is where a user checks which gallery a command would use: a folder
    not made yet (a new install, a mistyped FACEBOT_DATA_DIR) is said to be missing, not
    shown as a gallery of 0 people."""
    code, out, _ = cli("db", "status")
    assert code == 0 and f"no gallery at {cli.data} yet" in out and "0 people" not in out
    assert json.loads(cli("db", "status", "--json")[1])["exists"] is False
    cli("enroll", "Ana", samples / "s2" / "1.jpg", *CONSENT)
    code, out, _ = cli("db", "status")
    assert f"tinydb gallery at {cli.data}" in out and "1 people, 1 samples" in out
    assert json.loads(cli("db", "status", "--json")[1])["exists"] is True


def test_identify_takes_a_folder_of_photos(cli, samples, tmp_path):
    """`facebot identify FOLDER` names the faces of every photo in it, in name order; other
    files are passed over, and an empty folder is one error line."""
    import shutil

    cli("enroll", "Ana", samples / "s2" / "1.jpg", *CONSENT)
    folder = tmp_path / "inbox"
    folder.mkdir()
    shutil.copy(samples / "s2" / "9.jpg", folder / "b.jpg")
    shutil.copy(samples / "s5" / "1.jpg", folder / "a.JPG")
    (folder / "notes.txt").write_text("not a photo")
    (tmp_path / "empty").mkdir()
    code, out, _ = cli("identify", "--json", folder, tmp_path / "empty")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["image"] for line in lines] == [str(folder / "a.JPG"), str(folder / "b.jpg"), str(tmp_path / "empty")]
    assert lines[0]["faces"][0]["name"] is None and lines[1]["faces"][0]["name"] == "Ana"
    assert code == 1 and "no photos" in lines[2]["error"]


def test_list_and_delete(cli, samples):
    cli("enroll", "Ana", samples / "s2" / "1.jpg", samples / "s2" / "5.jpg", *CONSENT)
    cli("enroll", "Bob", samples / "s5" / "1.jpg", *CONSENT)
    code, out, _ = cli("delete", "ana")
    assert code == 0 and "2 sample(s) removed" in out
    code, out, _ = cli("list")
    assert "Bob" in out and "Ana" not in out
    code, _, err = cli("delete", "Ana")
    assert code == 1 and "nobody called" in err
    code, out, _ = cli("identify", samples / "s2" / "9.jpg")
    assert "unknown" in out


def test_threshold_default_saved_and_flag(cli, samples):
    from facebot.recognition import DEFAULT_RULE

    code, out, _ = cli("threshold")
    assert out.strip() == f"{DEFAULT_RULE.describe()} (default)"
    cli("enroll", "Ana", samples / "s2" / "1.jpg", *CONSENT)
    cli("threshold", "0.2")  # so strict that nobody matches
    code, out, _ = cli("identify", "--json", samples / "s2" / "9.jpg")
    assert json.loads(out)["faces"][0]["known"] is False
    code, out, _ = cli("--threshold", "0.9", "identify", "--json", samples / "s2" / "9.jpg")
    assert json.loads(out)["faces"][0]["name"] == "Ana"  # the flag beats the saved setting
    code, _, err = cli("threshold", "5")
    assert code == 1 and "between 0 and 2" in err


def test_enroll_dir_batches_writes_and_reports_skips(cli, samples, tmp_path, monkeypatch):
    from facebot.storage.atomic import AtomicJSONStorage

    people = tmp_path / "people"
    shutil.copytree(samples, people)
    (people / "s2" / "notes.jpg").write_bytes(b"not a photo")
    (people / ("x" * 70)).mkdir()
    shutil.copy(samples / "s5" / "9.jpg", people / ("x" * 70) / "1.jpg")
    writes = []
    original = AtomicJSONStorage._write_file
    monkeypatch.setattr(AtomicJSONStorage, "_write_file", lambda self, data: (writes.append(self.path.name), original(self, data)))
    code, out, _ = cli("enroll-dir", people, *CONSENT)
    assert code == 0
    assert "enrolled 20 photos of 5 people; skipped 2" in out
    assert "notes.jpg" in out and "longer than 64" in out
    assert writes.count("gallery.json") == 1  # 20 photos, one database write
    assert sorted((p.name, p.samples) for p in Gallery(cli.data).people()) == [(p, 4) for p in ("s11", "s2", "s23", "s37", "s5")]


def test_enroll_dir_says_how_to_enroll_a_skipped_photo_of_several_people(cli, samples, tmp_path):
    """A press photo often shows a bystander: enroll-dir skips it (it cannot guess whose
    folder it is) and prints the command that enrolls the right face."""
    people = tmp_path / "people"
    (people / "Bea").mkdir(parents=True)
    group = people / "Bea" / "1.jpg"
    group.write_bytes(jpeg_bytes(two_people(load_image(samples / "s2" / "1.jpg"), load_image(samples / "s5" / "1.jpg"))))
    shutil.copytree(samples / "s11", people / "Cid")
    code, out, _ = cli("enroll-dir", people, *CONSENT)
    assert code == 0 and "skipped 1" in out and "2 faces found" in out
    assert f"facebot enroll Bea {group} --face N" in out and "N: 1..2" in out
    assert [p.name for p in Gallery(cli.data).people()] == ["Cid"]


def test_killed_bulk_enrollment_keeps_every_acknowledged_sample(tmp_path, samples):
    people = tmp_path / "people"
    for copy in range(4):  # 20 people x 4 photos: long enough to be killed mid-way
        for person in samples.iterdir():
            if person.is_dir():
                shutil.copytree(person, people / f"{person.name}-{copy}")
    data = tmp_path / "data"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "facebot", "--data-dir", str(data), "enroll-dir", str(people), "--batch", "3", "--force",
         *CONSENT],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=env)
    acknowledged = 0
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        if line.startswith("saved "):
            acknowledged = int(line.split()[1])
            if acknowledged >= 9:
                proc.send_signal(signal.SIGKILL)
                break
        assert time.monotonic() < deadline
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and acknowledged >= 9
    gallery = Gallery(data)  # loads: the file is whole
    saved = sum(p.samples for p in gallery.people())
    assert acknowledged <= saved < 80
    assert len(gallery.embeddings()[0]) == saved


def test_demo_runs_on_the_shipped_samples(tmp_path):
    """As a new user runs it: nothing in the environment quiets the runtimes, and stderr stays
    empty (TFLite's C++ runtime used to print "INFO: Created TensorFlow Lite XNNPACK delegate
    for CPU." there in every command)."""
    out = tmp_path / "demo.jpg"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "facebot", "demo", "--out", str(out)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert "0 given a wrong name" in result.stdout
    correct = int(result.stdout.split("/16 correct")[0].split()[-1])
    assert correct >= 14  # one-shot: an occasional miss above the threshold is honest
    assert result.stdout.count("s5/") == 4 and "WRONG PERSON" not in result.stdout
    assert load_image(out).shape[0] > 200
    assert not (tmp_path / "data").exists()  # the demo never touches a real gallery


def test_calibrate_saves_the_rule_that_identify_then_follows(cli, samples):
    code, out, err = cli("calibrate", samples, "--far", "0.05", "--json")
    assert code == 0, err
    report = json.loads(out)
    fitted = report["rule"]
    assert report["saved"] and report["folders"][0]["identities"] == 5
    assert report["folders"][0]["false_accept_rate"] <= 0.05
    code, out, _ = cli("threshold")
    assert "(saved)" in out and f"{fitted['low']:.3f}" in out
    assert any(e["action"] == "calibrate" and e["low"] == fitted["low"] for e in map(json.loads, cli("audit")[1].splitlines()))
    cli("enroll", "Ana", samples / "s2" / "1.jpg", *CONSENT)
    code, out, _ = cli("identify", "--json", samples / "s2" / "9.jpg")
    face = json.loads(out)["faces"][0]
    assert face["name"] == "Ana" and face["distance"] <= fitted["high"] and "score" in face


def test_calibrate_dry_run_saves_nothing_and_a_missing_folder_is_one_line(cli, samples, tmp_path):
    code, out, _ = cli("calibrate", samples, "--far", "0.05", "--dry-run")
    assert code == 0 and "(default)" in cli("threshold")[1]
    code, _, err = cli("calibrate", tmp_path / "nowhere")
    assert code == 1 and err.startswith("facebot:") and "nowhere" in err


def test_a_damaged_gallery_is_one_line_naming_the_file(cli, samples):
    assert cli("enroll", "Ana", samples / "s2" / "1.jpg", *CONSENT)[0] == 0
    (cli.data / "gallery.json").write_bytes(b"")  # emptied by something else
    for args in (["list"], ["identify", samples / "s2" / "9.jpg"], ["enroll", "Bob", samples / "s5" / "1.jpg", *CONSENT]):
        code, out, err = cli(*args)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert str(cli.data / "gallery.json") in err and "damaged" in err
    assert (cli.data / "gallery.json").read_bytes() == b""  # nothing was written over it


def test_a_gallery_enrolled_with_the_old_square_crop_is_named_in_a_warning(tmp_path, recognizer, samples, caplog):
    from facebot.service import open_service

    old = Gallery(tmp_path / "g", features="facenet-20180408-102900")  # what facebot 0.1 wrote
    old.add_samples([("Ana", np.full(512, 512 ** -0.5, np.float32))], consent="test")
    old.set_setting("decision_rule", {"low": 0.7, "high": 0.9, "ratio": 0.8, "cohort_ratio": 0.8})
    service = open_service(tmp_path / "g", recognizer=recognizer)
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "1 enrolled people" in warnings and "Ana" in warnings and "facebot calibrate" in warnings
    assert service.rule.low != 0.7  # the old rule fits other distances: the default applies
    assert service.identify(load_image(samples / "s2" / "1.jpg"))[0].name is None  # nothing compared across crops
    service.enroll("Ana", load_image(samples / "s2" / "1.jpg"), consent="test")
    caplog.clear()
    open_service(tmp_path / "g", recognizer=recognizer)
    assert "enrolled people" not in caplog.text  # enrolled again: recognised, no warning


def test_identify_a_phones_50_megapixel_photo(cli, samples, tmp_path):
    """An 8160 x 6144 JPEG (a phone's 50 MP mode) is named like the small photo it holds,
    its box given in the photo's own pixels, and it can be enrolled from."""
    import cv2

    face = load_image(samples / "s5" / "1.jpg")
    canvas = np.full((6144, 8160, 3), 90, np.uint8)
    person = cv2.resize(face, (1600, round(1600 * face.shape[0] / face.shape[1])), interpolation=cv2.INTER_CUBIC)
    canvas[2000 : 2000 + person.shape[0], 3000 : 3000 + person.shape[1]] = person
    photo = tmp_path / "phone.jpg"
    photo.write_bytes(jpeg_bytes(canvas))
    del canvas
    code, out, err = cli("enroll", "Bea", photo, *CONSENT)
    assert code == 0 and "enrolled Bea" in out, err
    code, out, _ = cli("identify", "--json", photo, samples / "s5" / "9.jpg")
    reports = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["faces"][0]["name"] for r in reports] == ["Bea", "Bea"]
    x, y, w, h = reports[0]["faces"][0]["box"]
    assert 2900 < x < 3600 and 1900 < y < 3000 and w > 600  # in the 8160 x 6144 photo's pixels
