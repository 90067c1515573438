"""The pipeline on real faces: detect every face, embed, match by distance, draw."""
import copy

import numpy as np
import pytest

from facebot.lab.demo import mosaic
from facebot.recognition import Matcher, TooManyFaces, load_image
from facebot.recognition.align import BOX, SQUARE, crop_face
from facebot.recognition.draw import annotate, ascii_label


def photo(samples, person, n):
    return load_image(samples / person / f"{n}.jpg")


def test_one_face_with_a_unit_embedding(recognizer, samples):
    faces = recognizer.faces(photo(samples, "s2", 1))
    assert len(faces) == 1
    face = faces[0]
    assert face.crop.shape == (160, 160, 3) and face.crop.dtype == np.uint8
    assert face.embedding.shape == (512,)
    assert abs(np.linalg.norm(face.embedding) - 1) < 1e-4


def test_same_person_is_closer_than_a_different_person(recognizer, samples):
    a1, a2, b1 = (recognizer.faces(photo(samples, p, n))[0].embedding for p, n in [("s2", 1), ("s2", 9), ("s5", 1)])
    assert np.linalg.norm(a1 - a2) < 0.75 < np.linalg.norm(a1 - b1)


def test_batches_give_the_same_embeddings_as_single_faces(recognizer, samples):
    crops = np.stack([recognizer.faces(photo(samples, p, 1))[0].crop for p in ("s2", "s5", "s11")])
    batch = recognizer.embedder.embed(crops)
    single = np.concatenate([recognizer.embedder.embed(c[None]) for c in crops])
    assert np.abs(batch - single).max() < 1e-4


def test_fast_mtcnn_finds_the_same_boxes_as_the_package(recognizer, samples):
    from facebot.recognition.detect import MTCNNDetector

    plain = MTCNNDetector(compiled=False, float32=False, tflite_pnet=False)  # the `mtcnn` package as it comes
    group = mosaic([photo(samples, p, 5) for p in ("s2", "s5", "s11", "s23", "s37")], columns=3)
    for rgb in (photo(samples, "s2", 1), photo(samples, "s37", 13), group):
        fast, slow = recognizer.detector.detect(rgb), plain.detect(rgb)
        assert len(fast) == len(slow) >= 1
        assert np.abs(np.array([f.box for f in fast]) - np.array([f.box for f in slow])).max() <= 1


def test_network_input_is_the_trained_scaling_of_every_pixel_value():
    """FaceNet and MTCNN read (x - 127.5) / 128 in float32: every uint8 value maps exactly so,
    and the caller's pixels are left as they were."""
    from facebot.models import network_input

    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    before = pixels.copy()
    got = network_input(pixels)
    assert got.dtype == np.float32 and got.shape == pixels.shape
    assert np.array_equal(got, (pixels.astype(np.float32) - 127.5) / 128.0)
    assert np.array_equal(pixels, before)


def test_mtcnn_patches_are_cut_as_tensorflow_cuts_them(samples):
    """RNet and ONet see the patches TensorFlow's crop_and_resize would give them, boxes
    reaching over the photo's edge included (rows and columns outside are zeros)."""
    import tensorflow as tf

    from facebot.models import network_input
    from facebot.models.mtcnn_lite import crop_and_resize

    image = network_input(photo(samples, "s2", 1))
    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [-0.1, -0.05, 0.3, 0.2], [0.7, 0.8, 1.1, 1.2], [0.25, 0.3, 0.26, 0.31]])
    for size in (24, 48):
        want = tf.image.crop_and_resize(image[None], boxes, np.zeros(len(boxes), np.int32), (size, size)).numpy()
        got = crop_and_resize(image, boxes, size)
        assert got.shape == want.shape and got.dtype == np.float32
        # OpenCV samples on a 1/32-pixel grid: two uint8 levels at most, at a sharp edge
        assert np.abs(got - want).max() < 2.5 / 128 and np.abs(got - want).mean() < 0.1 / 128
    assert crop_and_resize(image, np.zeros((0, 4)), 24).shape == (0, 24, 24, 3)


def test_thousands_of_mtcnn_patches_are_cut_too(samples):
    """A photo of a crowd, or with a busy background, gives PNet thousands of candidates: the
    patches stacked in one remap map must not pass OpenCV's 32767-row limit (1,366 RNet
    patches used to raise cv2.error, and the photo was not identified)."""
    from facebot.models import network_input
    from facebot.models.mtcnn_lite import crop_and_resize

    image = network_input(photo(samples, "s2", 1))
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 0.8, (3000, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(0.05, 0.2, (3000, 1))], axis=1)
    for size in (24, 48):
        got = crop_and_resize(image, boxes, size)
        assert got.shape == (3000, size, size, 3)
        assert np.array_equal(got[2000:2010], crop_and_resize(image, boxes[2000:2010], size))


def test_a_photo_of_a_hundred_people_is_identified(recognizer, samples):
    """A company's all-hands photo: 100 faces (the shipped samples, tiled), each found and
    embedded, none refused for being too many."""
    people = [photo(samples, person, number) for person in ("s2", "s5", "s11", "s23", "s37") for number in (1, 5, 9, 13)]
    crowd = mosaic(people * 5, columns=10, cell=(96, 120), gap=8)
    faces = recognizer.faces(crowd)
    assert len(faces) >= 95 and all(f.embedding.shape == (512,) for f in faces)


def test_mtcnn_nms_keeps_the_rows_the_package_keeps():
    """The cascade's own non-maximum suppression gives the package's rows in the package's
    order: random boxes, tied scores, empty boxes, both overlap measures, sorted or not."""
    from mtcnn.utils.bboxes import smart_nms_from_bboxes

    from facebot.models.mtcnn_lite import nms

    rng = np.random.default_rng(0)
    for trial in range(300):
        count = int(rng.integers(1, 40))
        corner, size = rng.uniform(0, 100, (count, 2)), rng.uniform(0, 30, (count, 2))
        size[: count // 4 if trial % 5 == 0 else 0] = 0
        scores = rng.choice([0.6, 0.9], count) if trial % 2 else rng.uniform(0, 1, count)
        rows = np.column_stack([np.zeros(count), corner, corner + size, scores, rng.uniform(0, 1, (count, 10))])
        for method, threshold, ordered in (("union", 0.5, False), ("union", 0.7, True), ("min", 0.7, True)):
            with np.errstate(divide="ignore", invalid="ignore"):  # the package divides 0 by 0 for empty boxes
                want = smart_nms_from_bboxes(rows, threshold=threshold, method=method, initial_sort=ordered)
            assert np.array_equal(nms(rows, threshold, method, initial_sort=ordered), want)


def test_tflite_pnet_matches_tensorflow_for_any_size():
    from facebot.models.mtcnn_lite import TFLitePNet, package_stages

    keras_pnet = package_stages()[0]._model
    lite = TFLitePNet(keras_pnet, shapes=2)
    rng = np.random.default_rng(0)
    for height, width in [(12, 12), (45, 60), (288, 384), (45, 60), (13, 17)]:  # a re-used shape and an evicted one
        x = rng.uniform(-1, 1, (1, height, width, 3)).astype(np.float32)
        for want, got in zip(keras_pnet(x), lite(x)):
            assert want.shape == got.shape and np.abs(np.asarray(want) - np.asarray(got)).max() < 1e-4
    assert len(lite._interpreters) == 2


def test_every_face_in_a_group_picture_is_identified(recognizer, samples):
    people = ["s2", "s5", "s11", "s23", "s37"]
    enrolled = ["s2", "s11", "s23", "s37"]  # s5 is a stranger
    matcher = Matcher(enrolled, np.stack([recognizer.faces(photo(samples, p, 1))[0].embedding for p in enrolled]))
    group = mosaic([photo(samples, p, 13) for p in people], columns=5)
    results = recognizer.identify(group, matcher)
    by_position = sorted(results, key=lambda r: r.box[0])  # tiles are laid out left to right
    assert [r.label for r in by_position] == ["s2", "unknown", "s11", "s23", "s37"]
    stranger = by_position[1]
    assert not stranger.known and stranger.distance > 0.75 and stranger.to_dict()["name"] is None


def test_more_faces_than_the_cap_is_refused(recognizer, samples):
    group = mosaic([photo(samples, p, 5) for p in ("s2", "s5", "s11")], columns=3)
    saved = recognizer.max_faces
    recognizer.max_faces = 2
    try:
        with pytest.raises(TooManyFaces, match="3 faces"):
            recognizer.faces(group)
    finally:
        recognizer.max_faces = saved


def test_no_face_in_an_empty_scene(recognizer):
    wall = np.full((300, 400, 3), 200, np.uint8)
    wall[100:200, 150:250] = (90, 120, 160)
    assert recognizer.faces(wall) == []


def test_haar_detector_option(samples):
    from facebot.recognition.detect import make_detector

    faces = make_detector("haar").detect(photo(samples, "s2", 1))
    assert all(len(f.box) == 4 for f in faces)
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("yolo")


def test_matcher_agrees_with_brute_force():
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(300, 512)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    labels = [f"p{i % 100}" for i in range(300)]
    queries = gallery[[5, 17]] + 0.01
    matches = Matcher(labels, gallery).nearest(queries, threshold=0.5)
    for q, m in zip(queries, matches):
        d = np.linalg.norm(gallery - q, axis=1)
        assert m.name == labels[int(np.argmin(d))] and abs(m.distance - d.min()) < 1e-4 and m.known
    far = Matcher(labels, gallery).nearest(-gallery[:1], threshold=0.5)[0]
    assert not far.known
    assert Matcher([], np.zeros((0, 512), np.float32)).nearest(queries)[0].name is None
    excluded = Matcher(labels, gallery).nearest(gallery[5], exclude="p5")[0]
    assert excluded.name != "p5"


def test_crop_pads_faces_at_the_border():
    img = np.zeros((100, 100, 3), np.uint8)
    img[:50, :50] = 255
    crop = crop_face(img, (0, 0, 50, 50))
    assert crop.shape == (160, 160, 3)


def test_annotation_draws_boxes_and_readable_labels(samples):
    img = photo(samples, "s2", 1)
    out = annotate(img, [((20, 30, 100, 120), "Ana María 0.42", True)])
    assert out.shape == img.shape and not np.array_equal(out, img)
    assert np.array_equal(img, photo(samples, "s2", 1))  # the input is left alone
    assert ascii_label("Ana María Ñúñez") == "Ana Maria Nunez"


def test_box_crop_stretches_the_grown_box_to_the_square_input():
    # a 100 x 50 box (wide) whose left half is red and right half blue, on green
    img = np.zeros((300, 300, 3), np.uint8)
    img[:, :] = (0, 255, 0)
    img[100:150, 100:150] = (255, 0, 0)
    img[100:150, 150:200] = (0, 0, 255)
    box = crop_face(img, (100, 100, 100, 50))  # BOX: grown 20%, stretched; no proportions kept
    assert box.shape == (160, 160, 3)
    # the box fills the middle 160/1.2 = 133 px both ways: red left of centre, blue right, green only at the rim
    assert tuple(box[80, 30]) == (255, 0, 0) and tuple(box[80, 130]) == (0, 0, 255)
    assert tuple(box[30, 80]) != (0, 255, 0) and tuple(box[4, 80]) == (0, 255, 0)
    square = crop_face(img, (100, 100, 100, 50), style=SQUARE)  # squared on the long side: green above and below
    assert tuple(square[30, 80]) == (0, 255, 0) and tuple(square[80, 30]) == (255, 0, 0)


def test_a_turned_box_crop_stands_the_face_up():
    img = np.zeros((300, 300, 3), np.uint8)
    img[100:200, 100:150] = (255, 0, 0)  # the top of a face lying on its side points left
    upright = crop_face(img, (100, 100, 100, 100), angle=-90)
    assert tuple(upright[20, 80]) == (255, 0, 0) and tuple(upright[140, 80]) == (0, 0, 0)


def test_the_crop_is_part_of_the_features_id(recognizer):
    from facebot.recognition import Recognizer

    assert recognizer.crop == BOX and recognizer.features_id == "facenet-20180408-102900+box"
    legacy = copy.copy(recognizer)
    legacy._crop = SQUARE
    assert legacy.features_id == "facenet-20180408-102900"  # galleries of facebot 0.1 keep their samples' id
    assert Recognizer.crop.__doc__


def test_the_default_int8_facenet_embeds_as_the_float_one_within_a_small_distance(recognizer, samples, monkeypatch):
    from facebot.recognition.decision import DERIVED_ON_EMBEDDER
    from facebot.recognition.embed import Embedder

    crops = np.stack([f.crop for p in ("s2", "s5", "s11") for f in recognizer.faces(photo(samples, p, 1))])
    monkeypatch.delenv("FACEBOT_EMBEDDER", raising=False)
    assert Embedder().backend == "tflite-int8"
    assert recognizer.embedder.backend == "tflite-int8"
    monkeypatch.setenv("FACEBOT_EMBEDDER", "tflite")
    float_net = Embedder()  # the float graph the default rule was derived on
    assert float_net.backend == DERIVED_ON_EMBEDDER == "tflite"
    drift = np.linalg.norm(recognizer.embedder.embed(crops) - float_net.embed(crops), axis=1)
    assert drift.max() < 0.05  # the rule's thresholds are above 0.8
    with pytest.raises(ValueError, match="tflite-int8"):
        Embedder(backend="int4")


def test_a_reinstalled_facenet_reuses_its_converted_model_and_old_conversions_are_removed(tmp_path, monkeypatch):
    """Every reinstall gives the graph file a new mtime; a cache keyed by it grew by 117 MB per
    install (2.2 GB on the CI machine). The same checked graph must map to the same file."""
    import os
    import shutil
    import time

    from facebot.models.facenet import graph_path, tflite_path

    cache = tmp_path / "cache"
    monkeypatch.setenv("FACEBOT_CACHE_DIR", str(cache))
    cache.mkdir()
    legacy = cache / "facenet-20180408-102900-dynamic-range-94022009-1795616326.tflite"
    legacy.write_bytes(b"a conversion keyed by an old install's mtime")
    # another virtual environment's TensorFlow, in use: converting again at each start of
    # either would cost 5-20 s; one not used for two months is gone
    in_use = cache / "facenet-20180408-102900-dynamic-range-704afe26766ce621-tf2.99.0.tflite"
    stale = cache / "facenet-20180408-102900-dynamic-range-704afe26766ce621-tf2.98.0.tflite"
    for path in (in_use, stale):
        path.write_bytes(b"another TensorFlow's conversion")
    two_months_ago = time.time() - 60 * 86400
    os.utime(stale, (two_months_ago, two_months_ago))
    first = tflite_path(quantized=True)
    reinstalled = tmp_path / "site-packages" / "graph_final.pb"
    reinstalled.parent.mkdir()
    shutil.copyfile(graph_path(), reinstalled)
    os.utime(reinstalled, (1_900_000_000, 1_900_000_000))
    assert tflite_path(reinstalled, quantized=True) == first
    assert sorted(p.name for p in cache.iterdir()) == sorted([first.name, in_use.name])


def test_an_unreadable_cached_conversion_is_converted_again(tmp_path, monkeypatch, recognizer, samples):
    """A cached model cut short or overwritten (a full disk, a copy gone wrong) must not
    leave every later start on the 4x slower TensorFlow fallback: it is converted again."""
    from facebot.models.facenet import tflite_path
    from facebot.recognition.embed import Embedder

    monkeypatch.setenv("FACEBOT_CACHE_DIR", str(tmp_path))
    good = tflite_path(quantized=True)
    good.write_bytes(good.read_bytes()[:5_000_000])  # cut short
    embedder = Embedder(backend="tflite-int8")
    assert embedder.backend == "tflite-int8"
    crop = recognizer.faces(photo(samples, "s2", 1))[0].crop[None]
    assert np.linalg.norm(embedder.embed(crop) - recognizer.embedder.embed(crop)) < 1e-4
    assert good.stat().st_size > 20_000_000


def test_without_a_writable_cache_facenet_is_converted_in_memory(tmp_path, monkeypatch, recognizer, samples):
    """A read-only home or container: the int8 model is converted at start and kept in
    memory, not replaced by the 4x slower TensorFlow graph."""
    from facebot.recognition.embed import Embedder

    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    monkeypatch.setenv("FACEBOT_CACHE_DIR", str(not_a_folder))
    embedder = Embedder(backend="tflite-int8")
    assert embedder.backend == "tflite-int8"
    crop = recognizer.faces(photo(samples, "s2", 1))[0].crop[None]
    assert np.linalg.norm(embedder.embed(crop) - recognizer.embedder.embed(crop)) < 1e-4


def test_what_the_runtime_writes_to_stderr_while_caught_is_kept_for_the_log(capfd):
    """models.litert catches fd 2 during the first allocation (for TFLite's delegate notice):
    what is written there comes back as lines, and fd 2 is the terminal's again after."""
    import os

    from facebot.models.litert import _caught_stderr

    with _caught_stderr() as caught:
        os.write(2, b"INFO: a notice\nE something went wrong\n")
    os.write(2, b"after\n")
    assert caught == ["INFO: a notice", "E something went wrong"]
    assert capfd.readouterr().err == "after\n"
