"""Decode untrusted image bytes into RGB arrays, refusing anything unsafe or broken.

The image size is read from the file header *before* decoding, so a decompression bomb
(a few kilobytes that inflate to gigabytes) is refused without allocating its pixels.

`decode_photo` decodes a large JPEG at 1/2, 1/4 or 1/8 of its size (libjpeg scales while
decoding, so a 12-megapixel photo comes out at 2000 x 1500 in half the time of a full
decode, without a resize after it) and remembers the full size, so faces found in it can
be given in the photo's own pixels.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

MAX_BYTES = 64 * 1024 * 1024  # a 108-megapixel phone JPEG is 20-40 MB
MAX_PIXELS = 50_000_000  # the most pixels decoded at once (150 MB of RGB): a 48 MP photo whole
# The most pixels a JPEG may claim when decode_photo decodes it at a reduced size (so that at
# most MAX_PIXELS come out): a 108 MP phone photo (12,000 x 9,000). libjpeg still holds a
# progressive JPEG's coefficients for the whole photo meanwhile, 2-4 bytes a pixel.
MAX_JPEG_PIXELS = 110_000_000
MIN_SIDE = 16
# The file names taken for photos (folders of people, documents sent to the bot).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# decode_photo keeps the longer side at least this long: above the detector's 1024 px, so
# detection sees the same pixels, and faces keep enough pixels for a good 160 px crop.
DECODE_SIDE = 1280
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


class ImageError(ValueError):
    """The bytes are not an image we can safely use; the message says why, for a person."""


class PhoneFormat(ImageError):
    """A photo in a phone format OpenCV cannot decode: `kind` "HEIC" or "AVIF"."""

    def __init__(self, kind: str):
        super().__init__(f"a {kind} photo, which facebot cannot read (JPEG, PNG, WebP or BMP expected): export it "
                         "as JPEG first (on an iPhone: Settings > Camera > Formats > Most Compatible)")
        self.kind = kind


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
    if data[4:8] == b"ftyp" and (kind := _iso_photo_kind(data)):
        raise PhoneFormat(kind)  # OpenCV cannot decode these; a phone sends them when a photo goes as a file
    for magic, kind in _OTHER_FORMATS:
        if data.startswith(magic):
            raise ImageError(f"{kind}, which facebot does not read (JPEG, PNG, WebP or BMP expected): "
                             "save or export the photo as JPEG first")
    raise ImageError("not a supported image (JPEG, PNG, WebP or BMP expected)")


# Files people send for a photo that are not one facebot reads, named in the refusal: an
# animation, a scanner's or an editor's TIFF (its header gives no size safely checked before
# decoding), a PDF
_OTHER_FORMATS = ((b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"), (b"II*\x00", "a TIFF image"),
                  (b"MM\x00*", "a TIFF image"), (b"%PDF-", "a PDF document"))


# ISO base media "brands" of still photos: HEIF (the iPhone camera's format since 2017) and AVIF
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis"}


def _iso_photo_kind(data: bytes) -> str | None:
    """"AVIF" or "HEIC" for an ISO media file whose major brand is a still photo's (AVIF
    where the file's brands name it), else None (a video, say)."""
    if data[8:12] not in _HEIF_BRANDS:
        return None
    size = int.from_bytes(data[:4], "big")
    return "AVIF" if b"avif" in data[8 : max(12, min(size, 64))] else "HEIC"


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


def _checked_header(data: bytes, max_pixels: int, max_jpeg_pixels: int | None = None) -> tuple[str, int, int]:
    """(format, width, height) of image bytes that are safe to decode; ImageError otherwise.
    A JPEG may claim up to `max_jpeg_pixels` (None: `max_pixels`), for a caller that decodes
    it at a reduced size.

    Everything is decided from the header, before a pixel is allocated.
    """
    if not data:
        raise ImageError("the file is empty")
    if len(data) > MAX_BYTES:
        raise ImageError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    # JPEG headers (EXIF, ICC profiles) can be long; 256 KB always covers the frame header.
    fmt, width, height = image_header(bytes(data[: 256 * 1024]))
    if width <= 0 or height <= 0:
        raise ImageError("the image has no pixels")
    limit = max_jpeg_pixels if fmt == "jpeg" and max_jpeg_pixels is not None else max_pixels
    if width * height > limit:
        raise ImageError(
            f"the image is too large ({width} x {height} pixels; at most {limit:,} pixels)"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"the image is too small ({width} x {height} pixels)")
    if not _looks_complete(fmt, data):
        raise ImageError(f"the {fmt.upper()} file is truncated")
    return fmt, width, height


def _imdecode(data: bytes, fmt: str, flag: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """cv2.imdecode into RGB. Every IMREAD_COLOR* flag converts gray/RGBA/CMYK to 3-channel
    BGR and applies a JPEG's EXIF orientation."""
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    if bgr is None:
        raise ImageError(f"the {fmt.upper()} file is corrupt and could not be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode image bytes into an RGB uint8 array of shape (H, W, 3).

    Grayscale, palette, RGBA and CMYK inputs all come out as 3-channel RGB, and the EXIF
    orientation of a JPEG is applied, so a phone photo is upright. Raises ImageError with a
    readable reason for empty, oversized, truncated, corrupt or unsupported input.
    """
    fmt, _, _ = _checked_header(data, max_pixels)
    return _imdecode(data, fmt)


@dataclass(frozen=True)
class Photo:
    """A decoded photo, maybe at a reduced size: `rgb` holds the pixels decoded and `size`
    the (width, height) of the whole photo, upright, in whose pixels faces are reported.
    `decoder(factor)` decodes the same bytes again at 1/factor (1, 2 or 4) of the size, for
    faces too small in `rgb` (None: no bytes to decode again)."""

    rgb: np.ndarray
    size: tuple[int, int]
    decoder: Callable[[int], np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def scale(self) -> tuple[float, float]:
        """Photo pixels per decoded pixel, (x, y): 1.0 when decoded at full size."""
        return self.size[0] / self.rgb.shape[1], self.size[1] / self.rgb.shape[0]

    @property
    def reduced(self) -> bool:
        return self.scale != (1.0, 1.0)

    def sharper(self, face: float, wanted: float) -> tuple[np.ndarray, float]:
        """Pixels in which a face `face` px wide in `rgb` is at least `wanted` px (decoded
        again with the least reduction that does it, full size at most), and how many of
        their pixels make one of `rgb`'s. (rgb, 1.0) when there are none sharper."""
        reduced_by = round(self.scale[0])
        if self.decoder is None or reduced_by <= 1 or face >= wanted:
            return self.rgb, 1.0
        factor = reduced_by
        while factor > 1 and face * reduced_by / factor < wanted:
            factor //= 2
        sharp = self.decoder(factor)
        return sharp, sharp.shape[1] / self.rgb.shape[1]

    @classmethod
    def full(cls, rgb: np.ndarray) -> "Photo":
        """An already decoded array, at its own size."""
        return cls(rgb, (rgb.shape[1], rgb.shape[0]))


def reduction(width: int, height: int, min_side: int = DECODE_SIDE) -> int:
    """The largest JPEG decoding reduction (1, 2, 4 or 8) that keeps the longer side at
    least `min_side` px and the shorter at least half that: the second matters only for a
    photo more than twice as long as it is high (a panorama, whose faces are small against
    its length)."""
    factor = 1
    while (factor < 8 and max(width, height) / (factor * 2) >= min_side
           and min(width, height) / (factor * 2) >= min_side / 2):
        factor *= 2
    return factor


def least_reduction(width: int, height: int, max_pixels: int = MAX_PIXELS) -> int:
    """The smallest JPEG decoding reduction (1, 2, 4 or 8) that gives at most `max_pixels`."""
    factor = 1
    while factor < 8 and (width / factor) * (height / factor) > max_pixels:
        factor *= 2
    return factor


def decode_photo(data: bytes, min_side: int = DECODE_SIDE, max_pixels: int = MAX_PIXELS,
                 max_jpeg_pixels: int = MAX_JPEG_PIXELS) -> Photo:
    """Decode image bytes for recognition: a JPEG whose longer side is at least twice
    `min_side` is decoded at 1/2, 1/4 or 1/8 of its size (the longer side stays at least
    `min_side`, the shorter at least half that: see reduction); anything else at full
    size. Same checks and conversions as decode_image (raises ImageError), same
    orientation: `size` is the upright photo's. A JPEG may be as large as
    `max_jpeg_pixels`: no decoding of it, the first or a sharper one for a small face
    (Photo.sharper), gives more than `max_pixels`.
    """
    fmt, width, height = _checked_header(data, max_pixels, max_jpeg_pixels)
    factor = least = 1  # other formats have no reduced decoding
    if fmt == "jpeg":
        least = least_reduction(width, height, max_pixels)
        factor = max(reduction(width, height, min_side), least)
    rgb = _imdecode(data, fmt, _REDUCED.get(factor, cv2.IMREAD_COLOR))
    # EXIF orientations 5-8 turn the photo a quarter: the header's width is then its height.
    turned = width != height and (rgb.shape[0] > rgb.shape[1]) != (height > width)

    def decoder(less: int) -> np.ndarray:  # keeps the bytes only while the Photo lives
        return _imdecode(data, fmt, _REDUCED.get(max(less, least), cv2.IMREAD_COLOR))

    return Photo(rgb, (height, width) if turned else (width, height), decoder if factor > 1 else None)


def _file_bytes(path: str | Path) -> bytes:
    """The bytes of an image file, refused unread when over MAX_BYTES. Raises ImageError."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ImageError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read the file: {exc.strerror or exc}") from exc


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read and decode an image file into RGB at full size (see decode_image). Raises ImageError."""
    return decode_image(_file_bytes(path), max_pixels=max_pixels)


def read_photo(path: str | Path) -> Photo:
    """Read an image file for recognition (see decode_photo: a big JPEG is decoded at a
    reduced size, faces are given in the photo's pixels). Raises ImageError."""
    return decode_photo(_file_bytes(path))


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """Encode an RGB array as JPEG bytes (for replies and snapshots)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError("could not encode the image")
    return buf.tobytes()
