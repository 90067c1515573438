"""Builders for the awkward inputs the tests feed in: bombs, CMYK, EXIF-rotated, truncated."""
from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np


def jpeg_bytes(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def png_bytes(array: np.ndarray) -> bytes:
    """PNG of an RGB, RGBA or grayscale array (channel order as given, RGB(A))."""
    if array.ndim == 3 and array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small valid JPEG whose frame header claims `width` x `height` pixels: what a phone's
    50-megapixel photo or a JPEG bomb looks like before it is decoded."""
    data = bytearray(jpeg_bytes(np.full((64, 64, 3), 128, np.uint8)))
    at = data.index(b"\xff\xc0")  # baseline start-of-frame: length, precision, height, width
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_bomb(side: int = 16000) -> bytes:
    """A valid grayscale PNG of side x side black pixels: a few hundred KB on disk,
    side² bytes (256 MB at 16,000 px) once decoded."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    parts = [compressor.compress(row) for _ in range(side)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def cmyk_jpeg(rgb: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(out, format="JPEG", quality=95)
    return out.getvalue()


def exif_rotated_jpeg(rgb: np.ndarray) -> bytes:
    """Pixels stored turned a quarter to the left, with EXIF orientation 6 ('rotate 90°
    clockwise to display'), as phones write portrait photos."""
    from PIL import Image

    stored = np.ascontiguousarray(np.rot90(rgb, 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.fromarray(stored).save(out, format="JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def two_people(big: np.ndarray, small: np.ndarray) -> np.ndarray:
    """A photo of two people side by side on grey: `big` at its size, `small` at half its
    size (face 2, as `identify` numbers them biggest first)."""
    small = small[::2, ::2]
    canvas = np.full((big.shape[0] + 40, big.shape[1] + small.shape[1] + 80, 3), 180, np.uint8)
    canvas[20 : 20 + big.shape[0], 20 : 20 + big.shape[1]] = big
    canvas[60 : 60 + small.shape[0], big.shape[1] + 60 : big.shape[1] + 60 + small.shape[1]] = small
    return canvas


def face_shrunk_to(rgb: np.ndarray, face_width: float, pixels: float) -> np.ndarray:
    """The photo scaled so that its face, now `face_width` px wide, is `pixels` px wide."""
    import cv2

    scale = pixels / face_width
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def face_cut_by_edge(rgb: np.ndarray, box: tuple[int, int, int, int], share: float) -> np.ndarray:
    """The photo cropped on the left so that its edge cuts off `share` of the face in `box`
    (x, y, w, h), as a careless crop or a face at the side of a group photo."""
    x, _, w, _ = box
    return np.ascontiguousarray(rgb[:, int(round(x + share * w)):])
