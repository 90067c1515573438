"""Cut a face out of a photo into the square input the embedding network expects."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facebot.models.facenet import INPUT_SIZE

# Fill for the part of a face that lies outside the photo (a face cut by its edge).
# Measured on 90 LFW faces cut 25-40% by an edge, distance to the same face uncut:
# mid-grey 0.54 on average, edge replication 0.56, black 0.55, the visible part alone 0.62.
CUT_FILL = (128, 128, 128)
TURN_ROOM = 1.5  # a turned square fits in one 1.5 times as big (its diagonal is 1.42 times its side)


@dataclass(frozen=True)
class CropStyle:
    """How much of the photo around a detector's box becomes the network's input.

    `margin`: the box grows by this fraction of its size (half on each side); `keep_shape`:
    True squares the box on its longer side so the face keeps its proportions, False
    stretches the grown box itself to the square input. `features_suffix` is appended to the
    embedder's id (Recognizer.features_id): embeddings of one face cut two ways lie about
    0.6 apart, so a gallery must never compare them.
    """

    name: str
    margin: float
    keep_shape: bool
    features_suffix: str


# FaceNet's default: the box plus 20%, stretched to 160 x 160, the way FaceNet's own training
# crops were made (MTCNN's box plus a margin, resized without keeping proportions). Chosen on
# Georgia Tech (750 photos, every image pair): true-accept rate at a pair false-accept rate of
# 1e-4 98.6%, against 94.5% for SQUARE; margins 0.10 / 0.15 / 0.25 gave 97.5 / 98.1 / 98.4%.
BOX = CropStyle("box", margin=0.2, keep_shape=False, features_suffix="+box")
# The crop of facebot 0.1 (the longer side plus 10%, proportions kept): the Siamese networks
# of the lab were trained on it and keep it; galleries enrolled with it keep its features id.
SQUARE = CropStyle("square", margin=0.1, keep_shape=True, features_suffix="")
CROP_STYLES = {style.name: style for style in (BOX, SQUARE)}


def crop_face(rgb: np.ndarray, box: tuple[int, int, int, int], size: int = INPUT_SIZE, style: CropStyle = BOX,
              angle: float = 0.0) -> np.ndarray:
    """Return an RGB uint8 crop of shape (size, size, 3) around `box` (x, y, w, h).

    The box grows by `style.margin` of its size (FaceNet was trained on crops with some
    hair and chin around the detector's box) and is stretched to the square output, or
    first squared on its longer side when `style.keep_shape`. The box may reach outside
    the photo (a face cut by the edge, see detect.Face.extent): the missing part of the
    face is then filled with mid-grey. Where only the margin leaves the photo, its edge is
    replicated. `angle` (degrees, counter-clockwise) turns a face found lying on its side
    upright (detect.Face.angle); `box` is then the upright face's size around its centre
    in the photo, and anything outside the photo is grey.
    """
    x, y, w, h = box
    grow = 1.0 + style.margin
    width, height = (max(w, h) * grow,) * 2 if style.keep_shape else (w * grow, h * grow)
    cx, cy = x + w / 2.0, y + h / 2.0
    cut = x < 0 or y < 0 or x + w > rgb.shape[1] or y + h > rgb.shape[0]
    if not angle and width == height:
        return _square(rgb, cx, cy, width, size, grey=cut)
    # First a square around the face (room to turn it in), shrunk with area averaging only
    # as far as keeps its shorter side at `size` px or more, so no detail aliases; then one
    # affine warp turns it upright and stretches the grown box to size x size.
    room = max(width, height) * (TURN_ROOM if angle else 1.0)
    pixels = max(1, int(min(round(room), np.ceil(size * room / min(width, height)))))
    around = _square(rgb, cx, cy, room, pixels, grey=cut or bool(angle))
    k = pixels / room
    centre = np.array([pixels / 2.0, pixels / 2.0])
    scale = np.diag([size / (width * k), size / (height * k)])
    matrix = scale @ cv2.getRotationMatrix2D(tuple(centre), angle, 1.0)
    matrix[:, 2] += size / 2.0 - scale @ centre
    return cv2.warpAffine(around, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
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
