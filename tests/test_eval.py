"""`facebot eval`: the report's shape on the shipped samples, and the targets on the full set."""
import json
from pathlib import Path

import numpy as np
import pytest

from facebot.recognition.decision import DEFAULT_RULE, DecisionRule
from facebot.recognition.evaluate import (EmbeddedSet, calibrate_threshold, n_way_trials, one_shot_rank1, open_set,
                                          open_set_draws)

KEYS = {"identities", "images", "rank1", "n_way", "threshold", "rule", "false_accept_rate", "true_accept_rate",
        "pair_false_accept_rate", "pair_true_accept_rate", "calibrated_threshold", "detection_failures",
        "open_set_identities", "cohort_overlap", "small_galleries"}


def test_eval_json_on_the_samples(cli, samples):
    code, out, _ = cli("eval", samples, "--json", "--trials", "200", "--repeats", "3")
    assert code == 0
    report = json.loads(out)
    assert KEYS <= set(report)
    assert report["identities"] == 5 and report["images"] == 20 and report["detection_failures"] == 0
    assert set(report["n_way"]) == {"4"}  # 20- and 10-way need at least 20 and 10 identities
    assert 0.8 <= report["rank1"] <= 1 and all(0 <= v <= 1 for v in report["n_way"].values())
    assert report["rule"] == DEFAULT_RULE.to_dict() and report["threshold"] == DEFAULT_RULE.high
    # None of the samples' people built the background cohort: all five stay in the rule's figures.
    assert report["cohort_overlap"] == [] and report["open_set_identities"] == 5
    assert set(report["small_galleries"]) == {"1", "2", "3"}
    assert all(r["false_accept_rate"] == 0 for r in report["small_galleries"].values())
    assert not cli.data.exists()  # eval only reads the saved rule: a gallery not there is not made


def test_eval_threshold_flag_measures_a_plain_threshold(cli, samples):
    code, out, _ = cli("--threshold", "0.75", "eval", samples, "--json", "--trials", "50", "--repeats", "2")
    report = json.loads(out)
    assert code == 0 and report["threshold"] == 0.75
    assert report["rule"] == {"low": 0.75, "high": 0.75, "ratio": 0.0, "cohort_ratio": 0.0,
                              "small_face": 0.0, "small_slack": 0.0}


def test_eval_table_and_repeatability(cli, samples):
    first = cli("eval", samples, "--json", "--trials", "100", "--repeats", "2")[1]
    second = cli("eval", samples, "--json", "--trials", "100", "--repeats", "2")[1]
    strip = lambda r: {k: v for k, v in json.loads(r).items() if k != "seconds"}  # noqa: E731
    assert strip(first) == strip(second)  # fixed seeds
    code, out, _ = cli("eval", samples, "--trials", "100", "--repeats", "2")
    assert "89.20%" in out and "99.20%" in out and "one-shot rank-1" in out  # the original's 4-way figures
    assert "20-way" not in out and "10-way" not in out and "4-way" in out
    assert "ratio" in out and f"{DEFAULT_RULE.high:.3f}" in out


def synthetic(identities=30, per=6, spread=0.2, seed=0) -> EmbeddedSet:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, 64))
    rows = np.repeat(centres, per, axis=0) + spread * rng.normal(size=(identities * per, 64))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return EmbeddedSet([str(i) for i in range(identities)], np.repeat(np.arange(identities), per), rows.astype(np.float32), ["x"] * len(rows))


def test_eval_says_how_much_the_open_set_moves_with_the_draw(cli, samples):
    """A few people give open-set figures that move with who is drawn as a stranger: eval
    also measures seeds seed..seed+4 and prints their range, the report's own seed first."""
    code, out, _ = cli("eval", samples, "--json", "--trials", "50", "--repeats", "3", "--seed", "2")
    report = json.loads(out)
    spread = report["open_set_seeds"]
    assert code == 0 and spread["seeds"] == [2, 3, 4, 5, 6]
    assert spread["false_accept_rate"][0] == report["false_accept_rate"]
    assert spread["true_accept_rate"][0] == report["true_accept_rate"]
    assert all(0 <= v <= 1 for v in spread["false_accept_rate"] + spread["true_accept_rate"])
    code, out, _ = cli("eval", samples, "--trials", "50", "--repeats", "3", "--seed", "2")
    tars = spread["true_accept_rate"]
    assert f"over seeds 2-6: false-accept" in out and f"{100 * min(tars):.2f}-{100 * max(tars):.2f}%" in out


def test_protocols_separate_easy_from_hard_data():
    easy, hard = synthetic(spread=0.05), synthetic(spread=4.0)
    assert one_shot_rank1(easy) == 1.0 and one_shot_rank1(hard) < 0.5
    threshold = calibrate_threshold(easy, 0.001)
    result = open_set(easy, threshold)  # a float is a plain distance threshold
    assert result["false_accept_rate"] < 0.05 and result["true_accept_rate"] > 0.95


def test_more_photos_enrolled_per_person_name_more_of_the_others():
    """--shots K: K photos of each member enrolled, their other photos probed. With faces
    that vary (spread 1.2), the nearest of K samples accepts more of a person's other photos,
    and, with more samples to fall near, more strangers too."""
    data = synthetic(identities=30, per=8, spread=1.2)
    one = open_set_draws(data, seed=3, cohort=None)
    three = open_set_draws(data, seed=3, cohort=None, shots=3)
    members = np.sum(one.genuine) / 7  # probes per enrolled person: 7 with one shot, 5 with three
    assert np.sum(three.genuine) == members * 5 and np.sum(~three.genuine) == np.sum(~one.genuine)
    rule = DecisionRule.from_threshold(calibrate_threshold(data, 0.01))
    assert three.rates(rule)["true_accept_rate"] > one.rates(rule)["true_accept_rate"] + 0.05
    assert three.rates(rule)["false_accept_rate"] > one.rates(rule)["false_accept_rate"]
    assert open_set_draws(data, seed=3, cohort=None, shots=1).rates(rule) == one.rates(rule)  # the default


def test_the_open_set_protocol_gives_small_faces_the_rules_slack():
    """The evaluation judges each probe as identify does: a probe whose face was small
    (EmbeddedSet.widths) gets high + small_slack, so more of its own people are named."""
    from dataclasses import replace

    data = synthetic(identities=30, per=6, spread=1.0)
    rule = DecisionRule(low=0.5, high=0.95, ratio=1.0, cohort_ratio=0.0, small_face=56, small_slack=0.1)
    big = open_set_draws(replace(data, widths=np.full(len(data.labels), 120.0)), cohort=None).rates(rule)
    small = open_set_draws(replace(data, widths=np.full(len(data.labels), 40.0)), cohort=None).rates(rule)
    unknown = open_set_draws(data, cohort=None).rates(rule)  # no widths: no slack
    assert big == unknown and small["true_accept_rate"] > big["true_accept_rate"] + 0.02
    assert open_set_draws(replace(data, widths=np.full(len(data.labels), 40.0)), cohort=None).widths.min() == 40


def test_eval_shots_flag(cli, samples, capsys):
    code, out, _ = cli("eval", samples, "--json", "--trials", "50", "--repeats", "2", "--shots", "2")
    report = json.loads(out)
    assert code == 0 and report["shots"] == 2 and 0 < report["true_accept_rate"] <= 1
    code, out, _ = cli("eval", samples, "--trials", "50", "--repeats", "2", "--shots", "3")
    assert "3 photos enrolled per other person" in out
    with pytest.raises(SystemExit) as refused:
        cli("eval", samples, "--shots", "0")
    assert refused.value.code == 2 and "--shots: 0: must be 1 or more" in capsys.readouterr().err


def test_n_way_trials_put_the_true_match_first_and_never_the_probe():
    labels = np.repeat(np.arange(15), 4)
    for probe, support in n_way_trials(labels, 20, 200, seed=1):
        assert len(support) == 15  # capped at the number of identities
        assert labels[support[0]] == labels[probe] and support[0] != probe
        assert len({labels[s] for s in support}) == 15


@pytest.mark.slow
def test_georgia_tech_meets_the_targets(cli, georgia_tech):
    # The rule's figures are on the 29 people who did not build the background cohort (21 did).
    # Its low, high and ratio were chosen on all 50 before the cohort existed (in-sample for
    # those three), its cohort ratio on the 21 cohort people only; LFW is the honest test.
    code, out, _ = cli("eval", georgia_tech, "--json")
    assert code == 0
    r = json.loads(out)
    assert r["identities"] == 50 and r["images"] == 750
    assert r["open_set_identities"] == 29 and len(r["cohort_overlap"]) == 21
    assert r["rank1"] >= 0.999 and r["n_way"]["20"] >= 0.995
    assert r["false_accept_rate"] <= 0.005 and r["true_accept_rate"] >= 0.98
    # Small galleries: about the old 0.75 threshold's false accepts (0.05-0.22%), not 3-6%.
    assert all(g["false_accept_rate"] <= 0.003 and g["true_accept_rate"] >= 0.98 for g in r["small_galleries"].values())
    assert r["detection_failures"] <= 2


@pytest.mark.slow
def test_lfw_subset_with_the_default_rule(cli, georgia_tech):
    """The default rule on press photos it was not chosen on (seed 0): measured FAR 0.33% (1
    of 300 stranger probes), TAR 95.87%; small galleries of 1-5 people: FAR 0.00-0.07%, TAR
    91.2-94.7% (README, "Decision rule"; other seeds give 90.8-94.9%)."""
    lfw = georgia_tech.parent.parent / "lfw_subset"
    if not lfw.is_dir():
        pytest.skip("../shared/datasets/lfw_subset is not present")
    code, out, _ = cli("eval", lfw, "--json")
    r = json.loads(out)
    assert code == 0 and r["identities"] == 10 and set(r["n_way"]) == {"10", "4"}
    assert r["false_accept_rate"] <= 0.005 and r["true_accept_rate"] >= 0.95 and r["cohort_overlap"] == []
    assert all(g["false_accept_rate"] <= 0.002 and g["true_accept_rate"] >= 0.9 for g in r["small_galleries"].values())


def test_the_small_face_slack_procedure_takes_the_least_that_names_the_small_faces():
    """lab.small_faces.choose on hand-made draws: owners' 40-px faces at 1.0 need a slack of
    0.05 on faces under 48 px (the smallest grid values that name them all); strangers at
    1.3 stay unknown with any slack."""
    from facebot.lab.small_faces import choose, degrade

    count = 20
    genuine = np.arange(count) < 10
    draw = (np.where(genuine, 1.0, 1.3), np.full(count, 0.5), np.full(count, np.inf), np.full(count, 40.0), genuine, genuine)
    size, slack, grid = choose([draw], DEFAULT_RULE)
    assert (size, slack) == (48, 0.05) and grid[(size, slack)] == (0.0, 1.0) and grid[(size, 0.0)] == (0.0, 0.0)
    photo = np.full((480, 640, 3), 128, np.uint8)
    assert degrade(photo, 200.0, np.random.default_rng(0)).shape[1] < 640  # shrunk: a 200-px face to 140 px or less


def test_an_enrollment_gate_is_the_last_band_within_two_points_of_the_best_samples():
    """lab.small_faces.last_band_within on hand-made tables (visible shares of cut faces, and
    face widths), and the cut-face lab's crop: the edge cuts the face by the share asked,
    the photo keeps its size."""
    from facebot.lab.cut_faces import cut_by_edge
    from facebot.lab.small_faces import last_band_within

    rows = [(0.95, 1.0, 0.0, 0.99, 9), (0.9, 0.95, 0.0, 0.975, 9), (0.85, 0.9, 0.0, 0.965, 9), (0.8, 0.85, 0.0, 0.99, 9)]
    assert last_band_within(rows) == 0.9  # 0.965 is more than 2 points under 0.99; a better band below does not count
    widths = [(96, 10_000, 0.0, 0.994, 9), (80, 96, 0.0, 0.99, 9), (64, 80, 0.001, 0.975, 9), (48, 64, 0.0, 0.93, 9)]
    assert last_band_within(widths) == 64
    photo = np.zeros((200, 300, 3), np.uint8)
    photo[50:150, 100:200] = 255  # the "face"
    cut = cut_by_edge(photo, (100, 50, 100, 100), 0.3, side=0)
    assert cut.shape == photo.shape and (cut[100, :70] == 255).all() and (cut[100, 70] == 0).all()


@pytest.mark.slow
def test_video_stills_and_png_photos_of_people_enrolled_from_one_press_photo(cli, georgia_tech, tmp_path):
    """As a new user would: enroll-dir with each LFW person's first photo (one shows two
    people and is skipped), then identify their other photos as video stills from 240p to
    1080p (faces 40-140 px, JPEG quality 60) and as RGBA PNGs, and nine Georgia Tech
    strangers. Nobody is misnamed, no stranger is named, and 44 of the 45 photos of
    enrolled people are named (42 before small faces got their slack: two 360p stills)."""
    import shutil

    import cv2

    lfw = georgia_tech.parent.parent / "lfw_subset"
    if not lfw.is_dir():
        pytest.skip("../shared/datasets/lfw_subset is not present")
    rng = np.random.default_rng(1)

    def still(bgr: np.ndarray, height: int, face: int, path) -> None:
        width = round(height * 16 / 9)
        frame = np.full((height, width, 3), 90, np.uint8)
        person = cv2.resize(bgr, None, fx=face / (0.42 * bgr.shape[1]), fy=face / (0.42 * bgr.shape[1]),
                            interpolation=cv2.INTER_AREA)
        x, y = int(rng.integers(0, max(1, width - person.shape[1]))), int(rng.integers(0, max(1, height - person.shape[0])))
        h, w = min(person.shape[0], height - y), min(person.shape[1], width - x)
        frame[y : y + h, x : x + w] = person[:h, :w]
        cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, 60])

    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    expected = {}
    for i, person in enumerate(people):
        photos = sorted(person.glob("*.jpg"))
        (tmp_path / "enroll" / person.name).mkdir(parents=True)
        shutil.copy(photos[0], tmp_path / "enroll" / person.name)
        for j, photo in enumerate(photos[1:5]):
            height = (240, 360, 480, 720, 1080)[(i + j) % 5]
            path = tmp_path / f"{person.name}_{j}_{height}p.jpg"
            still(cv2.imread(str(photo)), height, {240: 40, 360: 55, 480: 70, 720: 100, 1080: 140}[height], path)
            expected[path] = person.name
        rgba = cv2.cvtColor(cv2.imread(str(photos[6])), cv2.COLOR_BGR2BGRA)
        rgba[:20, :, 3] = 0
        cv2.imwrite(str(tmp_path / f"{person.name}.png"), rgba)
        expected[tmp_path / f"{person.name}.png"] = person.name
    for k, photo in enumerate(sorted(georgia_tech.glob("s4*/3.jpg"))[:9]):
        still(cv2.imread(str(photo)), 480, 90, tmp_path / f"stranger_{k}.jpg")
        expected[tmp_path / f"stranger_{k}.jpg"] = None
    code, out, _ = cli("enroll-dir", tmp_path / "enroll", "--consent", "LFW press photos, test data")
    assert code == 0 and "skipped 1" in out and "Tony_Blair" in out  # two faces in his first photo
    code, out, _ = cli("identify", "--json", *expected)
    named = wrong = strangers_named = 0
    for line in out.splitlines():
        report = json.loads(line)
        face = max(report["faces"], key=lambda f: f["box"][2])  # the photo's subject
        want = expected[Path(report["image"])]
        enrolled = want not in (None, "Tony_Blair")
        named += bool(enrolled and face["name"] == want)
        wrong += bool(enrolled and face["name"] and face["name"] != want)
        strangers_named += bool(not enrolled and face["name"])
    assert wrong == 0 and strangers_named == 0 and named >= 44
