"""Finding every face: faces cut by the photo's edge, group photos, big photos decoded at a
reduced size with boxes still in the photo's own pixels, and the passes that keep it fast."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facebot.lab.demo import mosaic
from facebot.recognition import load_image
from facebot.recognition.align import CUT_FILL, crop_face
from facebot.recognition.detect import Face, MTCNNDetector, shrink
from facebot.recognition.images import decode_image, decode_photo, encode_jpeg

PEOPLE = ("s2", "s5", "s11", "s23", "s37")
GREY = 200


def photo(samples, person: str, number: int) -> np.ndarray:
    return load_image(samples / person / f"{number}.jpg")


def centre(box) -> tuple[float, float]:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def found_near(faces, point: tuple[float, float], tolerance: float) -> bool:
    """Whether a face's whole box has its centre within `tolerance` px of `point`."""
    return any(abs(cx - point[0]) < tolerance and abs(cy - point[1]) < tolerance
               for cx, cy in (centre(f.whole_box) for f in faces))


def cut_by_edge(rgb: np.ndarray, face: tuple[int, int, int, int], side: str, fraction: float,
                size: tuple[int, int] = (640, 480)) -> tuple[np.ndarray, tuple[float, float]]:
    """`rgb` pasted on a grey frame so that `fraction` of its face's width lies beyond the
    frame's left or right edge; returns the frame and where the face's centre is (outside
    the frame's pixels for a cut over half)."""
    width, height = size
    x, y, w, h = face
    ox = -(x + int(fraction * w)) if side == "left" else width - (x + w - int(fraction * w))
    oy = (height - rgb.shape[0]) // 2
    frame = np.full((height, width, 3), GREY, np.uint8)
    x0, x1 = max(0, ox), min(width, ox + rgb.shape[1])
    frame[oy : oy + rgb.shape[0], x0:x1] = rgb[:, x0 - ox : x1 - ox]
    return frame, (ox + x + w / 2, oy + y + h / 2)


@pytest.fixture(scope="module")
def s2_big(recognizer, samples) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Sample s2/1 at 1.5x (212 x 316) and its face's box, found by the default detector."""
    big = cv2.resize(photo(samples, "s2", 1), None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    return big, recognizer.detector.detect(big)[0].box


@pytest.fixture()
def unpadded(recognizer, s2_big):
    """The default detector as it was before: no padding, one pass at up to 1024 px, no turned passes."""
    detector = recognizer.detector
    saved = detector.pad, detector.first_side, detector.turns
    detector.pad, detector.first_side, detector.turns = 0.0, None, ()
    yield detector
    detector.pad, detector.first_side, detector.turns = saved


@pytest.mark.parametrize("side, fraction", [("left", 0.4), ("left", 0.5), ("right", 0.4), ("right", 0.5)])
def test_a_face_cut_by_the_edge_is_found(recognizer, s2_big, side, fraction):
    big, whole = s2_big
    frame, where = cut_by_edge(big, whole, side, fraction)
    faces = recognizer.detector.detect(frame)
    assert len(faces) == 1 and found_near(faces, where, 0.25 * whole[2])
    face = faces[0]
    # the box stays inside the photo, touching the cut edge; the whole box reaches past it
    x, y, w, h = face.box
    assert x >= 0 and x + w <= frame.shape[1]
    assert (x == 0) if side == "left" else (x + w == frame.shape[1])
    assert face.extent is not None
    assert face.extent[0] < 0 if side == "left" else face.extent[0] + face.extent[2] > frame.shape[1]


@pytest.mark.parametrize("side, fraction", [("left", 0.4), ("left", 0.5), ("right", 0.4), ("right", 0.5)])
def test_without_the_padding_the_cut_face_is_missed(unpadded, s2_big, side, fraction):
    """The same frames through the detector as it was: the face is not found."""
    big, whole = s2_big
    frame, where = cut_by_edge(big, whole, side, fraction)
    assert not found_near(unpadded.detect(frame), where, 0.25 * whole[2])


def edge_group(samples, size: tuple[int, int] = (1600, 1200)) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A group selfie from the shipped samples: 7 people side by side in two rows, faces
    about a sixth of the frame's height; the first and last of the back row are cut by the
    left and right edges, the middle one of the front row by the bottom edge (each by
    about 40% of the face). Returns the frame and the centre of each face."""
    width, height = size
    frame = np.full((height, width, 3), GREY, np.uint8)
    tile_h = height // 3
    spots = [(-0.45, 0.04), (0.20, 0.0), (0.42, 0.05), (1.0, 0.0),  # back row: x as a share of the width
             (0.08, 0.48), (0.40, 1.0), (0.72, 0.50)]  # front row; y 1.0: cut by the bottom edge
    people = [(p, 1) for p in PEOPLE] + [("s2", 9), ("s11", 9)]
    detector = MTCNNDetector(first_side=None)  # only to locate each face in its tile
    centres = []
    for (fx, fy), (person, number) in zip(spots, people):
        tile = photo(samples, person, number)
        scale = tile_h / tile.shape[0]
        tile = cv2.resize(tile, (round(tile.shape[1] * scale), tile_h), interpolation=cv2.INTER_CUBIC)
        fx0, fy0, fw, fh = detector.detect(tile)[0].box
        x = int(fx * width) if fx > 0 else int(fx * tile.shape[1])
        if fx >= 1.0:
            x = width - int(0.55 * tile.shape[1])
        y = int(fy * height) if fy < 1.0 else height - int(fy0 + 0.6 * fh)
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width, x + tile.shape[1]), min(height, y + tile.shape[0])
        frame[y0:y1, x0:x1] = tile[y0 - y : y1 - y, x0 - x : x1 - x]
        centres.append((x + fx0 + fw / 2, y + fy0 + fh / 2))
    return frame, centres


def test_group_selfie_with_faces_cut_by_the_edges(recognizer, samples):
    frame, centres = edge_group(samples)
    faces = recognizer.detector.detect(frame)
    tolerance = frame.shape[0] / 12
    assert [found_near(faces, c, tolerance) for c in centres] == [True] * 7
    assert len(faces) == 7


def test_group_selfie_through_the_whole_pipeline(recognizer, samples):
    """Crops of the cut faces come from their whole boxes: still a 160 px face crop, the
    missing part grey, and boxes inside the photo."""
    frame, _ = edge_group(samples)
    faces = recognizer.faces(frame)
    assert len(faces) == 7
    for face in faces:
        x, y, w, h = face.box
        assert 0 <= x and 0 <= y and x + w <= frame.shape[1] and y + h <= frame.shape[0]
        assert face.crop.shape == (160, 160, 3)


def test_every_face_in_a_big_group_picture(recognizer, samples):
    """All 20 sample photos in one picture (faces about 7% of its width)."""
    group = mosaic([photo(samples, p, n) for p in PEOPLE for n in (1, 5, 9, 13)], columns=5)
    faces = recognizer.detector.detect(group)
    assert len(faces) == 20


def test_small_faces_in_a_large_group_photo(recognizer, samples):
    """Ten people across a 3000 px photo: faces about 3% of its width, found by a closer pass."""
    group = mosaic([photo(samples, p, n) for p in PEOPLE for n in (1, 9)], columns=10)
    frame = np.full((1500, 3000, 3), GREY, np.uint8)
    small = cv2.resize(group, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    y, x = 900, 600
    frame[y : y + small.shape[0], x : x + small.shape[1]] = small
    sides = []
    detector = recognizer.detector
    original = detector._pass

    def counting(rgb, side, *bound):
        sides.append(side)
        return original(rgb, side, *bound)

    detector._pass = counting
    try:
        faces = detector.detect(frame)
    finally:
        del detector._pass
    assert len(faces) == 10
    assert len(sides) >= 2 and sides[0] == detector.first_side


def test_the_faces_of_a_panorama_are_found(recognizer, samples):
    """A phone panorama (16000 x 3000 JPEG) of ten people, faces about 110 px. Decoded keeping
    its shorter side at 640 px or more (1/4, not 1/8), and looked at with 512 px or more on
    its shorter side (2731 x 512, not 1024 x 192): all ten found (three were, at 7 px each)."""
    frame = np.full((3000, 16000, 3), GREY, np.uint8)
    for i, (person, number) in enumerate((p, n) for p in PEOPLE for n in (1, 9)):
        img = photo(samples, person, number)
        x = 300 + i * 1540
        frame[1500 : 1500 + img.shape[0], x : x + img.shape[1]] = img
    panorama = decode_photo(encode_jpeg(frame, quality=85))
    assert panorama.size == (16000, 3000) and panorama.rgb.shape[:2] == (750, 4000)
    faces = recognizer.faces(panorama)
    assert len(faces) == 10 and all(90 < f.box[2] < 140 for f in faces)


def test_a_closer_pass_looks_only_for_faces_smaller_than_the_first_pass_saw(recognizer, samples):
    """One big face in front, ten small ones behind: the closer pass skips the pyramid levels
    of big faces, and the big face, found by the first pass only, is still given once."""
    frame = np.full((1500, 3000, 3), GREY, np.uint8)
    big = cv2.resize(photo(samples, "s23", 5), None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC)  # face ~400 px
    frame[: big.shape[0], 2000 : 2000 + big.shape[1]] = big[:1500, :1000]
    group = cv2.resize(mosaic([photo(samples, p, n) for p in PEOPLE for n in (1, 9)], columns=10), None, fx=0.6, fy=0.6,
                       interpolation=cv2.INTER_AREA)
    frame[900 : 900 + group.shape[0], 100 : 100 + group.shape[1]] = group[:, :1850]
    calls = []
    detector = recognizer.detector
    original = detector._pass
    detector._pass = lambda rgb, side, bound=None: calls.append((side, bound)) or original(rgb, side, bound)
    try:
        faces = detector.detect(frame)
    finally:
        del detector._pass
    assert len(calls) >= 2 and calls[0] == (detector.first_side, None)
    assert all(bound is not None and bound < side for side, bound in calls[1:])
    biggest = faces[0]
    assert biggest.box[0] >= 2000 and biggest.box[2] > 300
    assert sum(1 for f in faces if f.box[0] >= 2000) == 1
    assert sum(1 for f in faces if f.box[1] >= 900 and f.box[0] < 1950) == 10


def test_a_small_face_the_closer_pass_misses_is_kept_and_the_search_stops():
    """The first pass sees one small face (say a poster's); the closer pass does not find it
    again: the face stands, and no third, full-size pass runs."""
    from facebot.recognition.detect import _Pass

    detector = MTCNNDetector.__new__(MTCNNDetector)  # the pass logic alone, no networks
    detector.first_side, detector.max_side, detector.min_face, detector.escalate_below, detector.turns = 320, 1024, 20, 2.5, ()
    small = Face((1000, 500, 60, 60), 0.9)
    calls = []

    def fake_pass(rgb, side, bound=None):
        calls.append((side, bound))
        return _Pass([small], 20.0) if bound is None else _Pass([], float("inf"))

    detector._pass = fake_pass
    assert detector.detect(np.zeros((1500, 3000, 3), np.uint8)) == [small]
    assert len(calls) == 2 and calls[1][1] is not None


def test_a_portrait_takes_one_small_pass(recognizer, samples):
    """One big face: the first, small pass finds it and no other pass runs."""
    frame = cv2.resize(photo(samples, "s23", 5), None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)  # 1128 x 1688
    sides = []
    detector = recognizer.detector
    original = detector._pass
    detector._pass = lambda rgb, side, *bound: sides.append(side) or original(rgb, side, *bound)
    try:
        faces = detector.detect(frame)
    finally:
        del detector._pass
    assert len(faces) == 1 and sides == [detector.first_side]


def test_reduced_decoding_keeps_boxes_in_the_photos_pixels(recognizer, samples):
    """A 3200 x 2400 JPEG decoded at half size: the same faces, boxes in full-size pixels."""
    group = mosaic([photo(samples, p, 5) for p in PEOPLE], columns=5)
    frame = cv2.resize(group, (3200, round(3200 * group.shape[0] / group.shape[1])), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((2400, 3200, 3), GREY, np.uint8)
    canvas[600 : 600 + frame.shape[0]] = frame
    data = encode_jpeg(canvas)
    reduced = decode_photo(data)
    assert reduced.reduced and reduced.rgb.shape[:2] == (1200, 1600) and reduced.size == (3200, 2400)
    full = recognizer.faces(decode_image(data))
    half = recognizer.faces(reduced)
    assert len(full) == len(half) == 5
    by_x = lambda faces: np.array(sorted(f.box for f in faces))  # noqa: E731
    # a pixel of the half-size image is two of the photo's: a few pixels apart at most
    assert np.abs(by_x(full) - by_x(half)).max() <= 6
    embeddings = lambda faces: np.stack([f.embedding for f in sorted(faces, key=lambda f: f.box)])  # noqa: E731
    assert np.linalg.norm(embeddings(full) - embeddings(half), axis=1).max() < 0.3


def test_a_photo_array_is_a_photo_at_full_size(recognizer, samples):
    from tests.images import png_bytes

    rgb = photo(samples, "s5", 9)
    decoded = decode_photo(png_bytes(rgb))  # lossless, and not a JPEG: decoded at full size
    assert not decoded.reduced and decoded.size == (rgb.shape[1], rgb.shape[0])
    assert [f.box for f in recognizer.faces(rgb)] == [f.box for f in recognizer.faces(decoded)]


def test_shrink_keeps_the_aspect_and_reports_the_scale():
    rgb = np.zeros((3000, 4000, 3), np.uint8)
    small, sx, sy = shrink(rgb, 320)
    assert small.shape == (240, 320, 3) and sx == sy == 12.5
    same, sx, sy = shrink(rgb[:200, :300], 320)
    assert same.shape == (200, 300, 3) and sx == sy == 1.0


def test_crop_of_a_face_cut_by_the_edge_fills_the_missing_part_with_grey():
    rgb = np.full((200, 200, 3), 30, np.uint8)
    crop = crop_face(rgb, (-50, 50, 100, 100))  # half of the face lies left of the photo
    assert crop.shape == (160, 160, 3)
    assert tuple(crop[80, 5]) == CUT_FILL and tuple(crop[80, 150]) == (30, 30, 30)
    inside = crop_face(rgb, (2, 50, 100, 100))  # only the margin leaves the photo: edge replicated
    assert tuple(inside[80, 2]) == (30, 30, 30)


def test_face_whole_box_defaults_to_its_box():
    assert Face((1, 2, 3, 4)).whole_box == (1, 2, 3, 4)
    assert Face((0, 2, 3, 4), extent=(-2, 2, 5, 4)).whole_box == (-2, 2, 5, 4)


@pytest.mark.parametrize("angle", [70, 90, -90, 180])
def test_a_face_lying_on_its_side_is_found_and_cut_upright(recognizer, samples, angle):
    """A head turned 70 or 90 degrees (beyond what MTCNN finds upright), or a photo upside
    down (a phone held so, its EXIF orientation lost): found, and its crop turned upright
    embeds close to the upright photo's."""
    upright = photo(samples, "s37", 1)
    frame = np.full((700, 700, 3), GREY, np.uint8)
    y, x = (700 - upright.shape[0]) // 2, (700 - upright.shape[1]) // 2
    frame[y : y + upright.shape[0], x : x + upright.shape[1]] = upright
    turned = cv2.warpAffine(frame, cv2.getRotationMatrix2D((350, 350), angle, 1.0), (700, 700), borderValue=(GREY,) * 3)
    faces = recognizer.faces(turned)
    assert len(faces) == 1
    reference = recognizer.faces(upright)[0].embedding
    assert np.linalg.norm(faces[0].embedding - reference) < 0.6
    assert found_near(recognizer.detector.detect(turned), (350, 350), 60)


@pytest.mark.parametrize("angle", [50, -45])
def test_a_tilted_face_is_cut_from_its_box_as_it_stands(recognizer, samples, angle):
    """A head tilted 45-50 degrees is found as it lies, in a box too big and off-centre for a
    crop: it is looked at again turned upright, for its angle and its box as it stands. Over
    the five shipped people, its embedding lies about 0.25 from the upright photo's (0.55-0.6
    when cut from the tilted box)."""
    distances = []
    for person in ("s2", "s5", "s11", "s23", "s37"):
        upright = photo(samples, person, 1)
        frame = np.full((700, 700, 3), GREY, np.uint8)
        y, x = (700 - upright.shape[0]) // 2, (700 - upright.shape[1]) // 2
        frame[y : y + upright.shape[0], x : x + upright.shape[1]] = upright
        tilted = cv2.warpAffine(frame, cv2.getRotationMatrix2D((350, 350), angle, 1.0), (700, 700),
                                borderValue=(GREY,) * 3)
        [face] = recognizer.faces(tilted)
        distances.append(np.linalg.norm(face.embedding - recognizer.faces(upright)[0].embedding))
    assert np.mean(distances) < 0.35, distances


def test_landmarks_give_the_tilt():
    from facebot.recognition.detect import roll

    upright = {"left_eye": (0, 0), "right_eye": (10, 0), "mouth_left": (2, 10), "mouth_right": (8, 10)}
    assert roll(upright) == pytest.approx(0)
    # turned 90 degrees clockwise: eyes on a vertical line, mouth to the left of them
    clockwise = {"left_eye": (10, 0), "right_eye": (10, 10), "mouth_left": (0, 2), "mouth_right": (0, 8)}
    assert roll(clockwise) == pytest.approx(90)
    # the same with the eyes swapped, as MTCNN may read a lying face: the mouth decides
    swapped = {**clockwise, "left_eye": (10, 10), "right_eye": (10, 0)}
    assert roll(swapped) == pytest.approx(90)
    assert roll({}) == 0.0


def test_a_turned_crop_of_an_upright_box_is_the_plain_crop_turned():
    rgb = np.zeros((200, 200, 3), np.uint8)
    rgb[60:100, 80:120] = 255  # a white block in the top half of the box below
    plain = crop_face(rgb, (50, 50, 100, 100))
    turned = crop_face(rgb, (50, 50, 100, 100), angle=180)
    assert np.abs(turned.astype(int) - plain[::-1, ::-1]).mean() < 8


def test_a_small_face_in_a_big_jpeg_is_cut_from_sharper_pixels(recognizer, samples):
    """A 3000 x 2000 JPEG is decoded at half size to find faces fast; a face 100 px wide
    there would be cut from 50 px and embed far from itself. It is cut from the photo
    decoded again at full size, its box unchanged: over the five shipped people its
    embedding lies less than half as far from the full decode's. (What distance is left
    comes from the box, found in half-size pixels: one or two pixels off.)"""
    from dataclasses import replace

    from tests.images import face_shrunk_to

    blurry_gap, sharp_gap = [], []
    for person in ("s2", "s5", "s11", "s23", "s37"):
        face = photo(samples, person, 5)
        small = face_shrunk_to(face, recognizer.faces(face)[0].pixels, 100)
        canvas = np.full((2000, 3000, 3), GREY, np.uint8)
        canvas[900 : 900 + small.shape[0], 1400 : 1400 + small.shape[1]] = small
        data = encode_jpeg(canvas)
        reduced = decode_photo(data)
        assert reduced.reduced and reduced.rgb.shape[:2] == (1000, 1500)
        [full] = recognizer.faces(decode_image(data))
        [blurry] = recognizer.faces(replace(reduced, decoder=None))  # the half-size pixels only
        [sharp] = recognizer.faces(reduced)
        assert blurry.pixels < 60 and sharp.pixels == pytest.approx(2 * blurry.pixels)
        assert sharp.box == blurry.box
        blurry_gap.append(np.linalg.norm(blurry.embedding - full.embedding))
        sharp_gap.append(np.linalg.norm(sharp.embedding - full.embedding))
    assert np.mean(sharp_gap) < 0.5 * np.mean(blurry_gap)


def test_a_face_cut_by_the_edge_says_how_much_of_it_is_inside(recognizer, samples):
    """DetectedFace.visible: the share of the face's box inside the photo (1 for a whole face);
    what enrollment reads to refuse a face the edge cuts."""
    from tests.images import face_cut_by_edge

    rgb = photo(samples, "s23", 1)
    [whole] = recognizer.faces(rgb)
    [cut] = recognizer.faces(face_cut_by_edge(rgb, whole.box, 0.4))
    assert whole.visible == 1.0 and 0.6 < cut.visible < 0.8
