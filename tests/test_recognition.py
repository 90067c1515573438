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
