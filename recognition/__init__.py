"""The pure face pipeline: decode and validate images, detect, crop, embed, match, draw.

No Telegram and no storage here. Typical use::

    from facebot.recognition import load_image, Recognizer, Matcher
    recognizer = Recognizer()                 # loads MTCNN + FaceNet once
    faces = recognizer.faces(load_image("ana.jpg"))
"""
from facebot.recognition.decision import DEFAULT_RULE, DecisionRule
from facebot.recognition.images import ImageError, decode_image, load_image
from facebot.recognition.match import DEFAULT_THRESHOLD, Match, Matcher
from facebot.recognition.pipeline import DetectedFace, Identification, Recognizer, TooManyFaces

__all__ = [
    "DEFAULT_RULE",
    "DEFAULT_THRESHOLD",
    "DecisionRule",
    "DetectedFace",
    "Identification",
    "ImageError",
    "Match",
    "Matcher",
    "Recognizer",
    "TooManyFaces",
    "decode_image",
    "load_image",
]
