"""Cut a face out of a photo into the square input the embedding network expects."""
from __future__ import annotations

import cv2
import numpy as np

from facebot.models.facenet import INPUT_SIZE

DEFAULT_MARGIN = 0.1
# Fill for the part of a face that lies outside the photo (a face cut by its edge).
# Measured on 90 LFW faces cut 25-40% by an edge, distance to the same face uncut:
# mid-grey 0.54 on average, edge replication 0.56, black 0.55, the visible part alone 0.62.
CUT_FILL = (128, 128, 128)
TURN_ROOM = 1.5  # a turned square fits in one 1.5 times as big (its diagonal is 1.42 times its side)


def crop_face(rgb: np.ndarray, box: tuple[int, int, int, int], size: int = INPUT_SIZE, margin: float = DEFAULT_MARGIN,
              angle: float = 0.0) -> np.ndarray:
    """Return an RGB uint8 crop of shape (size, size, 3) around `box` (x, y, w, h).

    The box is widened by `margin` of its size (FaceNet was trained on crops with some
    hair and chin around the detector's box) and squared on its longer side so the face
    keeps its proportions. The box may reach outside the photo (a face cut by the edge,
    see detect.Face.extent): the missing part of the face is then filled with mid-grey.
    Where only the margin leaves the photo, its edge is replicated, as it always was.
    `angle` (degrees, counter-clockwise) turns a face found lying on its side upright
    (detect.Face.angle); anything outside the photo is then grey.
    """
    x, y, w, h = box
    side = max(w, h) * (1.0 + margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    if not angle:
        cut = x < 0 or y < 0 or x + w > rgb.shape[1] or y + h > rgb.shape[0]
        return _square(rgb, cx, cy, side, size, grey=cut)
    room = int(round(size * TURN_ROOM))
    around = _square(rgb, cx, cy, side * room / size, room, grey=True)
    turn = cv2.getRotationMatrix2D((room / 2, room / 2), angle, 1.0)
    turn[:, 2] -= (room - size) / 2  # keep the middle `size` x `size`
    return cv2.warpAffine(around, turn, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=CUT_FILL)


def _square(rgb: np.ndarray, cx: float, cy: float, side: float, size: int, grey: bool) -> np.ndarray:
    """The square of `side` px centred on (cx, cy), resized to `size` px; where it leaves the
    photo, filled with grey (`grey`) or the photo's edge replicated."""
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = x0 + int(round(side)), y0 + int(round(side))
    height, width = rgb.shape[:2]
    crop = rgb[max(0, y0) : max(0, min(height, y1)), max(0, x0) : max(0, min(width, x1))]
    top, bottom, left, right = max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width)
    if crop.size == 0:  # nothing of the square inside the photo
        crop, top, bottom, left, right = np.full((y1 - y0, x1 - x0, 3), CUT_FILL, np.uint8), 0, 0, 0, 0
    if top or bottom or left or right:  # pad the crop only, not the whole photo
        if grey:
            crop = cv2.copyMakeBorder(crop, top, bottom, left, right, cv2.BORDER_CONSTANT, value=CUT_FILL)
        else:
            crop = cv2.copyMakeBorder(crop, top, bottom, left, right, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)
