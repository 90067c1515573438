"""Siamese networks (the original project's experiment, rebuilt): a from-scratch
convolutional twin network (pair / binary cross-entropy, and triplet loss) and a head on
frozen FaceNet embeddings, with identity-disjoint splits, training, evaluation and a scorer.

Driven by `facebot siamese train|eval` (bot/siamese_cli.py). Typical use::

    from facebot.models.siamese import load_scorer
    scorer = load_scorer("models/weights/siamese-facenet-head.npz")
    d = scorer.distance(scorer.features(a), scorer.features(b))
"""
from facebot.models.siamese.data import FaceSet, Split, split_identities
from facebot.models.siamese.networks import KINDS, NetConfig, SiameseNet, for_kind
from facebot.models.siamese.scorer import FaceNetScorer, SiameseScorer, load_scorer
from facebot.models.siamese.store import load_net, read_header, save_net
from facebot.models.siamese.train import History, TrainConfig, train

__all__ = [
    "KINDS", "FaceNetScorer", "FaceSet", "History", "NetConfig", "SiameseNet", "SiameseScorer", "Split",
    "TrainConfig", "for_kind", "load_net", "load_scorer", "read_header", "save_net", "split_identities", "train",
]
