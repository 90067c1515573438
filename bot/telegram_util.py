"""Small helpers of the Telegram bot: reading attachments and commands, drawing replies,
and keeping the token out of the logs. (Retries and token redaction, shared with the camera:
`facebot.telegram_retry`.)"""
from __future__ import annotations

import logging

import cv2
import numpy as np
from telegram import Message

from facebot.recognition.draw import annotate
from facebot.recognition.images import encode_jpeg
from facebot.telegram_retry import RedactToken, token_kept_out  # noqa: F401  shared with the camera

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
MAX_REPLY_SIDE = 2560  # annotated photos are scaled down to this before sending


def image_attachment(message: Message):
    """The largest size of a photo, or a document that claims to be an image; else None."""
    if message.photo:
        return message.photo[-1]
    doc = message.document
    if doc and ((doc.mime_type or "").startswith("image/") or (doc.file_name or "").lower().endswith(IMAGE_EXTENSIONS)):
        return doc
    return None


def command_argument(message_text: str | None) -> str:
    """What follows the command word: '/enroll@facebot Ana María' -> 'Ana María'."""
    parts = (message_text or "").split(maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


def annotated_jpeg(rgb: np.ndarray, labels: list) -> bytes:
    """Draw boxes and captions, scale down to MAX_REPLY_SIDE, and encode as JPEG."""
    picture = annotate(rgb, labels)
    side = max(picture.shape[:2])
    if side > MAX_REPLY_SIDE:
        scale = MAX_REPLY_SIDE / side
        picture = cv2.resize(picture, (round(picture.shape[1] * scale), round(picture.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return encode_jpeg(picture)
