"""Draw boxes and names on a photo, in any script.

Names are rendered with Pillow from fonts shipped by pinned PyPI packages and loaded
offline: Noto Sans (`justmytype-western-core`: Latin with accents, Greek, Cyrillic), Noto
Sans CJK (`noto-cjk-sans-otc`: Chinese, Japanese, Korean) and Noto Sans Arabic
(`justmytype-intl-rtl`). Each character is drawn with
the first font that has its glyph. A caption with a character no font has is replaced by the
face's number ("#2"), so the caller's list of names beside the photo says who it is. Labels
are placed where they neither overlap each other nor leave the image. Without the fonts,
captions fall back to OpenCV's ASCII font (accents dropped, "?" for the rest).
"""
from __future__ import annotations

import hashlib
import logging
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np

from facebot.recognition.images import Photo

log = logging.getLogger(__name__)

KNOWN_COLOUR = (40, 180, 60)  # RGB green
UNKNOWN_COLOUR = (220, 50, 40)  # RGB red
TEXT_COLOUR = (255, 255, 255)

Box = tuple[int, int, int, int]  # x, y, w, h
Label = tuple[Box, str, bool]  # (box, caption, known)


@dataclass(frozen=True)
class FontFile:
    """A font inside an installed package: where, which face of a collection, its SHA-256."""

    package: str
    path: str
    sha256: str
    index: int = 0


# Checked at load like model weights: the packages are pinned, the hash guards the file.
FONTS = (
    FontFile("justmytype_western_core", "fonts/ofl/notosans/NotoSans[wdth,wght].ttf",
             "bfb7bb691513f12e734dc346c03a03f784912432d7e3fa8e56efcf906fe86b3d"),  # Latin, Greek, Cyrillic
    FontFile("noto_cjk_sans_otc", "NotoSansCJK-Regular.ttc",
             "b76b0433203017ca80401b2ee0dd69350349871c4b19d504c34dbdd80541690a", index=2),  # Noto Sans CJK SC
    FontFile("justmytype_intl_rtl", "fonts/ofl/notosansarabic/NotoSansArabic[wdth,wght].ttf",
             "63111b5b2e074dd48cc67692e0a2726d86ee94c1c37fe8598257b7b4e87e869e"),
)


def face_labels(results, unknown: str = "unknown", numbered: bool = False) -> list[Label]:
    """The caption of every identified face, for `annotate`: "Ana 0.62" when known, the
    `unknown` word otherwise; `numbered` prefixes "1. ", "2. "... to match a list of lines.

    `results` are Identification-like objects (box, label, distance, known).
    """
    labels = []
    for i, r in enumerate(results, 1):
        if numbered:  # the numbered list beside the photo carries the details
            caption = f"{i}. {r.label} {r.distance:.2f}" if r.known else f"{i}. {unknown}"
        else:
            caption = f"{r.label if r.known else unknown} {r.distance:.2f}"
        labels.append((r.box, caption, r.known))
    return labels


def labels_in_decoded_pixels(labels: list, scale: tuple[float, float]) -> list:
    """Labels (box, caption, known) whose boxes are in a photo's pixels, moved into the pixels
    of its reduced decoding (`Photo.scale`: photo pixels per decoded pixel)."""
    sx, sy = scale
    if (sx, sy) == (1.0, 1.0):
        return labels
    return [((round(x / sx), round(y / sy), round(w / sx), round(h / sy)), caption, known)
            for (x, y, w, h), caption, known in labels]


def ascii_label(text: str) -> str:
    """OpenCV's fonts are ASCII only: drop accents ("María" -> "Maria"), '?' for the rest."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in stripped)


# -- fonts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedFont:
    path: str
    index: int
    codepoints: frozenset[int]


@lru_cache(maxsize=1)
def loaded_fonts() -> tuple[LoadedFont, ...]:
    """The shipped fonts that are installed and intact, with the characters each covers
    (read once; about 0.1 s). Empty when Pillow, fontTools or the fonts are missing."""
    try:
        from fontTools.ttLib import TTFont
        from PIL import ImageFont  # noqa: F401  (needed to draw; checked here once)
    except ImportError:
        log.warning("Pillow or fontTools missing: names are drawn in ASCII")
        return ()
    fonts = []
    for font in FONTS:
        try:
            path = Path(str(files(font.package) / font.path))
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except (ModuleNotFoundError, FileNotFoundError):
            log.warning("font package %s is not installed: some scripts cannot be drawn", font.package)
            continue
        if digest != font.sha256:
            log.warning("%s has SHA-256 %s, not the pinned font's: not used", path, digest)
            continue
        cmap = TTFont(path, fontNumber=font.index, lazy=True).getBestCmap()
        fonts.append(LoadedFont(str(path), font.index, frozenset(cmap)))
    return tuple(fonts)


@lru_cache(maxsize=32)
def _pil_font(font_number: int, size: int):
    from PIL import ImageFont

    font = loaded_fonts()[font_number]
    # RAQM shapes Arabic and orders right-to-left runs; basic layout where it is missing.
    engine = ImageFont.Layout.RAQM if _has_raqm() else ImageFont.Layout.BASIC
    return ImageFont.truetype(font.path, size=size, index=font.index, layout_engine=engine)


@lru_cache(maxsize=1)
def _has_raqm() -> bool:
    from PIL import features

    return bool(features.check("raqm"))


def font_runs(text: str) -> list[tuple[int, str]] | None:
    """Split `text` into (font number, characters) runs, each drawn with the first font that
    has every one of its glyphs; None when some character has no glyph in any font."""
    fonts = loaded_fonts()
    runs: list[tuple[int, str]] = []
    spaces = ""  # spaces join the run on their right unless both sides share a font, so a
    # right-to-left run never carries the space that separates it from what follows
    for ch in text:
        if ch.isspace():
            spaces += ch
            continue
        number = next((i for i, f in enumerate(fonts) if ord(ch) in f.codepoints), None)
        if number is None:
            return None
        if runs and runs[-1][0] == number:
            runs[-1] = (number, runs[-1][1] + spaces + ch)
        else:
            runs.append((number, spaces + ch))
        spaces = ""
    return runs


def render_text(text: str, size: int, background: tuple[int, int, int]) -> np.ndarray | None:
    """`text` in white on `background`, as an RGB array about `size` pixels tall with a small
    margin; None when a character has no glyph (or no font is installed)."""
    runs = font_runs(text) if loaded_fonts() else None
    if not runs:
        return None
    from PIL import Image, ImageDraw

    pad = max(2, size // 6)
    pieces = []  # (picture, ascent): each run drawn from its font's ascender line
    for number, chunk in runs:
        font = _pil_font(number, size)
        ascent, descent = font.getmetrics()
        width = max(1, int(np.ceil(font.getlength(chunk))), font.getbbox(chunk)[2])
        piece = Image.new("RGB", (width, ascent + descent), background)
        ImageDraw.Draw(piece).text((0, 0), chunk, font=font, fill=TEXT_COLOUR)
        pieces.append((np.asarray(piece), ascent))
    top = max(ascent for _, ascent in pieces)  # fonts differ in ascent: line the baselines up
    height = max(top - ascent + picture.shape[0] for picture, ascent in pieces)
    canvas = np.empty((height + 2 * pad, sum(p.shape[1] for p, _ in pieces) + 2 * pad, 3), np.uint8)
    canvas[:] = background
    x = pad
    for picture, ascent in pieces:
        y = pad + top - ascent
        canvas[y : y + picture.shape[0], x : x + picture.shape[1]] = picture
        x += picture.shape[1]
    return canvas


def _render_ascii(text: str, size: int, background: tuple[int, int, int]) -> np.ndarray:
    """The OpenCV fallback: ASCII only, same layout as render_text."""
    text = ascii_label(text)
    scale, thick = size / 30, max(1, size // 15)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, size // 6)
    canvas = np.empty((th + base + 2 * pad, tw + 2 * pad, 3), np.uint8)
    canvas[:] = background
    cv2.putText(canvas, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOUR, thick, cv2.LINE_AA)
    return canvas


def label_image(text: str, size: int, background: tuple[int, int, int], number: int) -> np.ndarray:
    """The picture of one caption: in its own script where the fonts have every glyph, else
    "#number" (with no fonts at all: the ASCII fallback)."""
    if not loaded_fonts():
        return _render_ascii(text, size, background)
    picture = render_text(text, size, background)
    return picture if picture is not None else render_text(f"#{number}", size, background)


# -- layout -----------------------------------------------------------------------------------
def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def place_label(box: Box, size: tuple[int, int], image: tuple[int, int], taken: list[Box]) -> Box:
    """Where a label of `size` (w, h) goes for a face `box` in an image of (width, height):
    above the box, else below, else inside its top, else the nearest free row; always inside
    the image and, where any free place exists, clear of the labels already `taken`."""
    (x, y, bw, bh), (w, h), (width, height) = box, size, image
    x = min(max(0, x), max(0, width - w))
    clamp = lambda top: min(max(0, top), max(0, height - h))  # noqa: E731
    candidates = [clamp(y - h), clamp(y + bh), clamp(y)]
    candidates += sorted(range(0, max(1, height - h + 1), max(1, h // 2)), key=lambda top: abs(top - y))
    for top in candidates:
        spot = (x, top, w, h)
        if not any(_overlaps(spot, other) for other in taken):
            return spot
    return (x, candidates[0], w, h)  # nowhere free: overlap rather than leave the image


def annotate(rgb: np.ndarray | Photo, labels: list[Label]) -> np.ndarray:
    """Return a copy of `rgb` with a box and a caption per face.

    `labels` holds (box, caption, known) per face; known faces are green, unknown red.
    Line widths and text size follow the photo's size so captions stay readable. For a
    Photo (maybe decoded at a reduced size), boxes are in the photo's pixels, as faces are
    reported, and are drawn on the pixels decoded.
    """
    if isinstance(rgb, Photo):
        rgb, labels = rgb.rgb, labels_in_decoded_pixels(labels, rgb.scale)
    out = np.ascontiguousarray(rgb.copy())
    height, width = out.shape[:2]
    thick = max(1, round(max(height, width) / 400))
    size = max(12, round(max(height, width) / 45))
    for (x, y, w, h), _, known in labels:
        cv2.rectangle(out, (x, y), (x + w, y + h), KNOWN_COLOUR if known else UNKNOWN_COLOUR, thick)
    taken: list[Box] = []
    for number, (box, caption, known) in enumerate(labels, 1):
        picture = label_image(caption, size, KNOWN_COLOUR if known else UNKNOWN_COLOUR, number)
        if picture.shape[1] > width or picture.shape[0] > height:  # a tiny photo: shrink the label to fit
            scale = min(width / picture.shape[1], height / picture.shape[0])
            picture = cv2.resize(picture, (max(1, int(picture.shape[1] * scale)), max(1, int(picture.shape[0] * scale))),
                                 interpolation=cv2.INTER_AREA)
        lx, ly, lw, lh = place_label(box, (picture.shape[1], picture.shape[0]), (width, height), taken)
        out[ly : ly + lh, lx : lx + lw] = picture
        taken.append((lx, ly, lw, lh))
    return out
