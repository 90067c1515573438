"""Annotated photos: names in any script, labels that stay clear of each other and inside the photo."""
import numpy as np
import pytest

from facebot.recognition.draw import (FONTS, KNOWN_COLOUR, annotate, label_image, loaded_fonts, place_label,
                                      render_text)


def glyphs_as_drawn_by_the_font(text: str, font_number: int, size: int = 32) -> np.ndarray:
    """`text` drawn directly with Pillow from one of the shipped fonts: the reference."""
    from PIL import Image, ImageDraw, ImageFont

    font = loaded_fonts()[font_number]
    pil = ImageFont.truetype(font.path, size=size, index=font.index)
    picture = Image.new("L", (size * (len(text) + 1), size * 2), 0)
    ImageDraw.Draw(picture).text((0, 0), text, font=pil, fill=255)
    return np.asarray(picture)


def ink(picture: np.ndarray) -> np.ndarray:
    """The text pixels of a label (white on a coloured background), cropped to their bounds."""
    mask = picture.min(axis=2) > 128 if picture.ndim == 3 else picture > 128
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def same_glyphs(a: np.ndarray, b: np.ndarray) -> bool:
    """Two ink masks are the same text: sizes within 2 pixels and, at the best alignment
    (anti-aliasing on a coloured background can move an edge by a pixel), 85% of the ink shared."""
    if abs(a.shape[0] - b.shape[0]) > 2 or abs(a.shape[1] - b.shape[1]) > 2:
        return False
    h, w = max(a.shape[0], b.shape[0]) + 2, max(a.shape[1], b.shape[1]) + 2
    a = np.pad(a, ((1, h - a.shape[0] - 1), (1, w - a.shape[1] - 1)))
    best = 0.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            m = np.pad(b, ((1 + dy, h - b.shape[0] - 1 - dy), (1 + dx, w - b.shape[1] - 1 - dx)))
            best = max(best, (a & m).sum() / (a | m).sum())
    return best > 0.85


@pytest.fixture(scope="module", autouse=True)
def fonts():
    if len(loaded_fonts()) != len(FONTS):
        pytest.skip("the shipped fonts are not installed")


@pytest.mark.parametrize("text, font_number", [("Андрей", 0), ("Ελένη", 0), ("José Müller", 0), ("王小明", 1)])
def test_names_are_drawn_with_the_fonts_glyphs_not_question_marks(text, font_number):
    label = ink(render_text(text, 32, KNOWN_COLOUR))
    assert same_glyphs(label, ink(glyphs_as_drawn_by_the_font(text, font_number)))
    assert not same_glyphs(label, ink(render_text("?" * len(text), 32, KNOWN_COLOUR)))


def test_arabic_is_drawn_with_the_arabic_font():
    label = render_text("محمد", 32, KNOWN_COLOUR)
    assert label is not None and ink(label).shape[1] > 30  # shaped glyphs, not an empty or "?" label
    assert same_glyphs(ink(label), ink(glyphs_as_drawn_by_the_font("محمد", 2)))
    assert not same_glyphs(ink(label), ink(render_text("????", 32, KNOWN_COLOUR)))


def test_a_character_no_font_has_gives_the_face_number():
    assert render_text("Ana \U0001F600", 24, KNOWN_COLOUR) is None
    numbered = label_image("Ana \U0001F600 0.61", 24, KNOWN_COLOUR, number=3)
    assert np.array_equal(numbered, render_text("#3", 24, KNOWN_COLOUR))


def test_labels_never_overlap_and_stay_inside_the_photo():
    rng = np.random.default_rng(0)
    width, height = 640, 480
    for _ in range(50):
        taken = []
        for _ in range(6):  # a crowded group photo: faces side by side, some at the edges
            box = (int(rng.integers(-20, width - 40)), int(rng.integers(-20, height - 40)), 60, 60)
            x, y, w, h = spot = place_label(box, (150, 24), (width, height), taken)
            assert 0 <= x and x + w <= width and 0 <= y and y + h <= height
            assert not any(x < o[0] + o[2] and o[0] < x + w and y < o[1] + o[3] and o[1] < y + h for o in taken)
            taken.append(spot)


def test_annotate_draws_every_label_inside_a_small_photo():
    photo = np.full((120, 160, 3), 90, np.uint8)
    out = annotate(photo, [((-10, 5, 60, 60), "Андрей Иванов 0.61", True), ((100, 60, 70, 70), "王小明 0.55", False)])
    assert out.shape == photo.shape and not np.array_equal(out, photo)
    assert np.array_equal(photo, np.full((120, 160, 3), 90, np.uint8))  # the caller's photo is untouched
