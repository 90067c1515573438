"""Draw boxes and names on a photo."""
from __future__ import annotations

import unicodedata

import cv2
import numpy as np

KNOWN_COLOUR = (40, 180, 60)  # RGB green
UNKNOWN_COLOUR = (220, 50, 40)  # RGB red


def ascii_label(text: str) -> str:
    """OpenCV's fonts are ASCII only: drop accents ("María" -> "Maria"), '?' for the rest."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in stripped)


Label = tuple[tuple[int, int, int, int], str, bool]  # (box x, y, w, h), caption, known


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


def annotate(rgb: np.ndarray, labels: list[tuple[tuple[int, int, int, int], str, bool]]) -> np.ndarray:
    """Return a copy of `rgb` with a box and a caption per face.

    `labels` holds (box, caption, known) per face; known faces are green, unknown red.
    Line widths and text size follow the photo's size so captions stay readable.
    """
    out = np.ascontiguousarray(rgb.copy())
    height, width = out.shape[:2]
    thick = max(1, round(max(height, width) / 400))
    font_scale = max(0.4, max(height, width) / 1200)
    for (x, y, w, h), caption, known in labels:
        colour = KNOWN_COLOUR if known else UNKNOWN_COLOUR
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thick)
        text = ascii_label(caption)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        ty = y - 4 if y - th - base - 4 >= 0 else min(height - 1, y + h + th + base + 4)
        cv2.rectangle(out, (x, ty - th - base), (x + tw + 4, ty + base // 2), colour, -1)
        cv2.putText(out, text, (x + 2, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out
