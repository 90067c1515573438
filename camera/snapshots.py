"""What a camera alert shows of the faces in view (FACEBOT_ALERT_SNAPSHOTS / --snapshots).

- `all`: the annotated frame (boxes and names), as before.
- `known`: the annotated frame only when every face found in it is named; otherwise no photo,
  and the alert's text says how many faces in view were not recognised.
- `blur`: the annotated frame with every unknown face pixelated and smoothed beyond
  recognition before the boxes and labels are drawn; named faces stay visible.
- `none`: never a photo.

One decision per processed frame: every alert raised by that frame gets the same snapshot.
Frames written by `facebot webcam --record` follow the setting too (`shown_frame`): with
anything but `all`, unknown faces are hidden on disk as in a `blur` alert.
Only the faces the detector found in that frame are known to exist: a face it missed (turned
away, too small) is neither counted nor blurred.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from facebot.recognition.draw import annotate, face_labels
from facebot.recognition.images import encode_jpeg

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # x, y, w, h

# How far past the detector's box an unknown face is hidden, as a share of the box's size
# per side: the box runs roughly brow to chin, and hair, ears and jaw identify people too.
BLUR_MARGIN = 0.25
# The hidden region keeps this many cells across its longer side (then smoothed): a face
# 6 cells wide has no features left to recognise, only its average colours.
BLUR_CELLS = 6


@dataclass(frozen=True)
class Snapshot:
    """What one processed frame's alerts carry: `photo` (JPEG bytes, or None for text only)
    and `note` (a line to add to the alert's text, or None)."""

    photo: bytes | None
    note: str | None = None


def obscure(rgb: np.ndarray, box: Box, margin: float = BLUR_MARGIN, cells: int = BLUR_CELLS) -> None:
    """Hide the face in `box` (x, y, w, h) of the RGB image `rgb`, in place: the box grown by
    `margin` per side (clipped to the image) is averaged down to about `cells` cells across,
    then stretched back smoothly. Averaging throws the detail away for good, unlike a plain
    blur, which a determined reader can partly undo."""
    height, width = rgb.shape[:2]
    x, y, w, h = box
    dx, dy = int(round(w * margin)), int(round(h * margin))
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(width, x + w + dx), min(height, y + h + dy)
    if x1 <= x0 or y1 <= y0:  # a box wholly outside the frame: nothing to hide
        return
    region = rgb[y0:y1, x0:x1]
    scale = cells / max(region.shape[:2])
    small = cv2.resize(region, (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    rgb[y0:y1, x0:x1] = cv2.resize(small, (region.shape[1], region.shape[0]), interpolation=cv2.INTER_LINEAR)


def blurred_unknowns(rgb: np.ndarray, results: Sequence) -> np.ndarray:
    """A copy of the RGB frame `rgb` with every face in `results` (Identification-like:
    box, known) that is not known hidden by `obscure`."""
    out = rgb.copy()
    for result in results:
        if not result.known:
            obscure(out, result.box)
    return out


def shown_frame(mode: str, rgb: np.ndarray, results: Sequence, unknown_label: str) -> np.ndarray:
    """The RGB frame as the camera may show it under `mode`: every face's box and label, with
    the unknown faces hidden (`obscure`, before the labels, which must stay readable) unless
    `mode` is "all". What `--record` writes, and the photo of an alert when it has one: a
    setting that keeps unknown faces out of the alert chat keeps them out of the recording on
    disk as well."""
    shown = rgb if mode == "all" else blurred_unknowns(rgb, results)
    return annotate(shown, face_labels(results, unknown=unknown_label))


def take_snapshot(mode: str, shown: np.ndarray, results: Sequence, withheld_note: str | None = None) -> Snapshot:
    """The snapshot for the alerts of one frame under `mode` (one of config.ALERT_SNAPSHOTS).

    `shown` is the frame from `shown_frame` (same mode), `results` its identifications.
    `withheld_note` is a template with {unknown} and {total}: under `known`, when a photo is
    withheld, it becomes the note that explains why.
    """
    unknown = sum(1 for r in results if not r.known)
    if mode == "none":
        return Snapshot(None)
    if mode == "known" and unknown:
        note = withheld_note.format(unknown=unknown, total=len(results)) if withheld_note else None
        return Snapshot(None, note)
    if mode not in ("all", "known", "blur"):  # config refuses these; never fall back to showing faces
        log.error("unknown snapshot setting %r: the alert goes out without a photo", mode)
        return Snapshot(None)
    return Snapshot(encode_jpeg(shown))  # under known, every face is named: nothing was hidden
