"""Cut a face out of a photo into the square input the embedding network expects."""
from __future__ import annotations

import cv2
import numpy as np

from facebot.models.facenet import INPUT_SIZE

DEFAULT_MARGIN = 0.1


def crop_face(rgb: np.ndarray, box: tuple[int, int, int, int], size: int = INPUT_SIZE, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Return an RGB uint8 crop of shape (size, size, 3) around `box` (x, y, w, h).

    The box is widened by `margin` of its size (FaceNet was trained on crops with some
    hair and chin around the detector's box), squared on its longer side so the face
    keeps its proportions, and padded by edge replication where it leaves the photo.
    """
    x, y, w, h = box
    side = max(w, h) * (1.0 + margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = x0 + int(round(side)), y0 + int(round(side))
    height, width = rgb.shape[:2]
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    crop = rgb[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)
