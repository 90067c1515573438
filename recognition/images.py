"""Decode untrusted image bytes into RGB arrays, refusing anything unsafe or broken.

The image size is read from the file header *before* decoding, so a decompression bomb
(a few kilobytes that inflate to gigabytes) is refused without allocating its pixels.
"""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

MAX_BYTES = 20 * 1024 * 1024  # Telegram's bot download limit; plenty for a photo
MAX_PIXELS = 50_000_000  # about 8,660 x 5,770: larger than any phone camera
MIN_SIDE = 16


class ImageError(ValueError):
    """The bytes are not an image we can safely use; the message says why, for a person."""


def image_header(data: bytes) -> tuple[str, int, int]:
    """Return (format, width, height) read from the header of `data`, without decoding.

    Supports JPEG, PNG, WebP and BMP. Raises ImageError for anything else.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("truncated PNG file")
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data[:3] == b"\xff\xd8\xff":
        return ("jpeg", *_jpeg_size(data))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ("webp", *_webp_size(data))
    if data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return "bmp", abs(width), abs(height)
    raise ImageError("not a supported image (JPEG, PNG, WebP or BMP expected)")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk the JPEG marker segments up to the first start-of-frame and read its size."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ImageError("corrupt JPEG file")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise ImageError("truncated JPEG file")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    raise ImageError("truncated WebP file")


def _looks_complete(fmt: str, data: bytes) -> bool:
    """Truncated files often still decode (the missing part comes out grey): catch them."""
    if fmt == "jpeg":
        return b"\xff\xd9" in data[-4096:]
    if fmt == "png":
        return b"IEND" in data[-64:]
    return True


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode image bytes into an RGB uint8 array of shape (H, W, 3).

    Grayscale, palette, RGBA and CMYK inputs all come out as 3-channel RGB, and the EXIF
    orientation of a JPEG is applied, so a phone photo is upright. Raises ImageError with a
    readable reason for empty, oversized, truncated, corrupt or unsupported input.
    """
    if not data:
        raise ImageError("the file is empty")
    if len(data) > MAX_BYTES:
        raise ImageError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    # JPEG headers (EXIF, ICC profiles) can be long; 256 KB always covers the frame header.
    fmt, width, height = image_header(bytes(data[: 256 * 1024]))
    if width <= 0 or height <= 0:
        raise ImageError("the image has no pixels")
    if width * height > max_pixels:
        raise ImageError(
            f"the image is too large ({width} x {height} pixels; at most {max_pixels:,} pixels)"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"the image is too small ({width} x {height} pixels)")
    if not _looks_complete(fmt, data):
        raise ImageError(f"the {fmt.upper()} file is truncated")
    # IMREAD_COLOR converts gray/RGBA/CMYK to 3-channel BGR and applies EXIF rotation.
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f"the {fmt.upper()} file is corrupt and could not be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read and decode an image file into RGB (see decode_image). Raises ImageError."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ImageError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read the file: {exc.strerror or exc}") from exc
    return decode_image(data, max_pixels=max_pixels)


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """Encode an RGB array as JPEG bytes (for replies and snapshots)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError("could not encode the image")
    return buf.tobytes()
