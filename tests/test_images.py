"""Bad and awkward input at the decoding step: refused with a reason, or decoded upright in RGB."""
import time

import cv2
import numpy as np
import pytest

from facebot.recognition import ImageError, decode_image, load_image
from facebot.recognition.images import image_header
from tests.images import cmyk_jpeg, exif_rotated_jpeg, jpeg_bytes, jpeg_claiming, png_bomb, png_bytes


@pytest.fixture(scope="module")
def face(samples):
    return load_image(samples / "s2" / "1.jpg")


def test_sample_decodes_to_rgb(face):
    assert face.dtype == np.uint8 and face.ndim == 3 and face.shape[2] == 3


def test_channels_come_out_in_rgb_order():
    red = np.zeros((40, 40, 3), np.uint8)
    red[..., 0] = 255
    decoded = decode_image(png_bytes(red))
    assert decoded[..., 0].min() == 255 and decoded[..., 2].max() == 0


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"this is not an image at all", "not a supported image"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "not a supported image"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "truncated PNG"),
])
def test_non_images_are_refused(data, reason):
    with pytest.raises(ImageError, match=reason):
        decode_image(data)


@pytest.mark.parametrize("brand, named", [(b"heic", "HEIC"), (b"mif1", "HEIC"), (b"avif", "AVIF")])
def test_an_iphone_heic_or_an_avif_photo_is_named_and_the_way_out_given(brand, named):
    """A phone's HEIC (or AVIF) file sent as is: the error says what it is and how to get a
    JPEG, rather than only that it is not supported."""
    data = b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00" + brand + b"heic" + b"\x00" * 64
    with pytest.raises(ImageError, match=named) as refused:
        decode_image(data)
    assert "JPEG" in str(refused.value) and "export" in str(refused.value)


@pytest.mark.parametrize("header, named", [(b"GIF89a\x01\x00\x01\x00", "a GIF image"), (b"GIF87a\x01\x00", "a GIF image"),
                                           (b"II*\x00\x08\x00\x00\x00", "a TIFF image"),
                                           (b"MM\x00*\x00\x00\x00\x08", "a TIFF image"),
                                           (b"%PDF-1.7\n", "a PDF document")])
def test_other_known_formats_are_named_and_the_way_out_given(header, named):
    """A GIF, a scanner's TIFF or a PDF: the error says which it is and what to send instead."""
    with pytest.raises(ImageError, match=named) as refused:
        decode_image(header + b"\x00" * 64)
    assert "JPEG" in str(refused.value)


def test_truncated_jpeg_is_refused(face):
    data = jpeg_bytes(face)
    with pytest.raises(ImageError, match="truncated|corrupt"):
        decode_image(data[: len(data) // 2])


def test_corrupt_jpeg_body_is_refused(face):
    data = bytearray(jpeg_bytes(face))
    # keep the header and the end marker, destroy the entropy-coded data
    data[600:-2] = b"\x00" * (len(data) - 602)
    try:
        decoded = decode_image(bytes(data))
    except ImageError:
        return
    # libjpeg may still hand back pixels; then they must not be the original picture
    assert not np.array_equal(decoded, face)


def test_decompression_bomb_is_refused_before_decoding(monkeypatch):
    bomb = png_bomb(16000)
    assert len(bomb) < 1_000_000  # tiny on disk ...
    assert image_header(bomb) == ("png", 16000, 16000)  # ... 256 megapixels once decoded

    def must_not_decode(*args, **kwargs):
        raise AssertionError("the bomb reached the decoder")

    monkeypatch.setattr(cv2, "imdecode", must_not_decode)
    started = time.perf_counter()
    with pytest.raises(ImageError, match="too large"):
        decode_image(bomb)
    assert time.perf_counter() - started < 1.0


def test_oversized_file_is_refused(tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff" + b"\x00" * (65 * 1024 * 1024))
    with pytest.raises(ImageError, match="larger than 64 MB"):
        load_image(big)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / "nope.jpg")


def test_grayscale_becomes_three_channels(face):
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    decoded = decode_image(png_bytes(gray))
    assert decoded.shape == face.shape
    assert np.array_equal(decoded[..., 0], gray)


def test_rgba_drops_alpha(face):
    rgba = np.dstack([face, np.full(face.shape[:2], 128, np.uint8)])
    decoded = decode_image(png_bytes(rgba))
    assert decoded.shape == face.shape
    assert np.array_equal(decoded, face)


def test_cmyk_jpeg_comes_out_rgb(face):
    decoded = decode_image(cmyk_jpeg(face))
    assert decoded.shape == face.shape
    assert np.abs(decoded.astype(int) - face.astype(int)).mean() < 12


def test_exif_orientation_is_applied(face):
    decoded = decode_image(exif_rotated_jpeg(face))
    assert decoded.shape == face.shape  # portrait again, not landscape
    assert np.abs(decoded.astype(int) - face.astype(int)).mean() < 8


# -- decode_photo: big JPEGs decoded at a reduced size, the photo's size remembered ----------

def big(face, width=2800):
    """The sample face blown up to `width` px wide: a JPEG big enough to decode at half size."""
    return cv2.resize(face, (width, round(width * face.shape[0] / face.shape[1])), interpolation=cv2.INTER_CUBIC)


def test_big_jpeg_is_decoded_at_a_reduced_size(face):
    from facebot.recognition.images import decode_photo

    rgb = big(face)
    photo = decode_photo(jpeg_bytes(rgb))
    assert photo.reduced and photo.size == (rgb.shape[1], rgb.shape[0])
    assert photo.rgb.shape == (rgb.shape[0] // 2, rgb.shape[1] // 2, 3) and photo.scale == (2.0, 2.0)
    half = cv2.resize(rgb, (photo.rgb.shape[1], photo.rgb.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(photo.rgb.astype(int) - half).mean() < 3  # the same picture, in RGB order


def test_small_photos_and_other_formats_are_decoded_at_full_size(face):
    from facebot.recognition.images import decode_photo

    assert not decode_photo(jpeg_bytes(face)).reduced
    assert not decode_photo(png_bytes(big(face))).reduced  # PNG has no cheap reduced decoding


def test_reduced_decoding_applies_exif_orientation(face):
    from facebot.recognition.images import decode_photo

    rgb = big(face)
    photo = decode_photo(exif_rotated_jpeg(rgb))
    assert photo.size == (rgb.shape[1], rgb.shape[0])  # upright: portrait, as shown
    assert photo.rgb.shape[0] > photo.rgb.shape[1] and photo.reduced


def test_reduced_decoding_of_gray_and_cmyk_gives_rgb(face):
    from facebot.recognition.images import decode_photo

    gray = decode_photo(jpeg_bytes(cv2.cvtColor(cv2.cvtColor(big(face), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)))
    assert gray.rgb.ndim == 3 and gray.rgb.shape[2] == 3 and gray.reduced
    cmyk = decode_photo(cmyk_jpeg(big(face)))
    assert cmyk.rgb.shape[2] == 3 and cmyk.reduced


def test_decode_photo_refuses_a_bomb_before_decoding(monkeypatch):
    from facebot.recognition.images import decode_photo

    def must_not_decode(*args, **kwargs):
        raise AssertionError("the bomb reached the decoder")

    monkeypatch.setattr(cv2, "imdecode", must_not_decode)
    with pytest.raises(ImageError, match="too large"):
        decode_photo(png_bomb(16000))


def test_decode_photo_refuses_a_truncated_jpeg(face):
    from facebot.recognition.images import decode_photo

    data = jpeg_bytes(big(face))
    with pytest.raises(ImageError, match="truncated|corrupt"):
        decode_photo(data[: len(data) // 2])


def test_a_phones_50_megapixel_jpeg_is_decoded_at_a_reduced_size(face):
    """Phones with 50-megapixel modes write 8160 x 6144 JPEGs (50.1 MP): decoded at 1/4,
    never at full size, the face reported in the photo's own pixels."""
    from facebot.recognition.images import MAX_PIXELS, decode_photo

    canvas = np.full((6144, 8160, 3), 90, np.uint8)
    person = big(face, width=1600)
    canvas[2000 : 2000 + person.shape[0], 3000 : 3000 + person.shape[1]] = person
    photo = decode_photo(jpeg_bytes(canvas))
    assert photo.size == (8160, 6144) and photo.scale == (4.0, 4.0)
    sharp, _ = photo.sharper(face=5, wanted=1000)  # asks for full size: no more pixels than the cap
    assert sharp.shape[0] * sharp.shape[1] <= MAX_PIXELS < 8160 * 6144


def test_a_jpeg_too_big_even_at_an_eighth_is_refused_before_decoding(monkeypatch):
    """A JPEG may claim up to 65,535 x 65,535 pixels: above 110 MP (a 108 MP phone photo) it
    is refused from its header, as a PNG over 50 MP is (PNG has no reduced decoding)."""
    from facebot.recognition.images import decode_photo

    def must_not_decode(*args, **kwargs):
        raise AssertionError("the bomb reached the decoder")

    monkeypatch.setattr(cv2, "imdecode", must_not_decode)
    with pytest.raises(ImageError, match="too large"):
        decode_photo(jpeg_claiming(16000, 16000))
    with pytest.raises(ImageError, match="too large"):
        decode_image(jpeg_claiming(8160, 6144))  # decode_image decodes at full size: the 50 MP cap


def test_read_photo_reads_a_file_for_recognition(tmp_path, face):
    """read_photo: a file's bytes through decode_photo, a big JPEG decoded at a reduced size."""
    from facebot.recognition.images import read_photo

    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg_bytes(big(face)))
    photo = read_photo(path)
    assert photo.reduced and photo.size == (2800, round(2800 * face.shape[0] / face.shape[1]))
    with pytest.raises(ImageError, match="cannot read"):
        read_photo(tmp_path / "missing.jpg")
