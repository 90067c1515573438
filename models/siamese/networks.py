"""The Siamese networks: a small convolutional encoder shared by both twins, and the Koch
et al. head that turns |e1 - e2| into the probability that two faces are one person.

Three kinds, one code path:

- "scratch": conv encoder on 105x105 colour crops + |e1 - e2| -> dense -> sigmoid,
  trained with binary cross-entropy on same/different pairs;
- "scratch-triplet": the same encoder, unit-length output, trained with a triplet loss
  and compared by L2 distance (no head);
- "facenet-head": no encoder (frozen FaceNet embeddings go in) + the same head.

The original project's encoder had 38.9M parameters and took an hour per epoch; this one
has about 0.4M and trains in minutes on 2 CPU cores.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

KINDS = ("scratch", "scratch-triplet", "facenet-head")
UNIT_SCALE = 10.0


@dataclass(frozen=True)
class NetConfig:
    """What fixes a network's shape; stored beside its weights so loading rebuilds it exactly.

    input_size: crop side fed to the encoder (crops are stored slightly larger and the
    training shifts a window of this size over them); crop_size: side the crops are
    resized to first; embedding_dim: encoder output (or FaceNet's 512 for facenet-head);
    width: channels of the first conv block (doubling per block); hidden: units of an
    optional hidden layer in the head (0 = Koch's single weighted-L1 unit); unit_features:
    scale the pair kind's features to length UNIT_SCALE (the triplet kind is always unit
    length).
    """

    kind: str = "scratch"
    input_size: int = 105
    crop_size: int = 113
    embedding_dim: int = 128
    width: int = 32
    hidden: int = 0
    dropout: float = 0.2
    unit_features: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown Siamese kind {self.kind!r}; choose one of {', '.join(KINDS)}")

    @property
    def uses_crops(self) -> bool:
        """True when the network reads face crops, False when it reads FaceNet embeddings."""
        return self.kind != "facenet-head"

    @property
    def has_head(self) -> bool:
        """True for the binary-cross-entropy kinds; the triplet kind compares by distance."""
        return self.kind != "scratch-triplet"

    def to_dict(self) -> dict:
        return asdict(self)


def for_kind(kind: str, **overrides) -> NetConfig:
    """The default configuration of a kind (facenet-head takes FaceNet's 512-d input)."""
    if kind == "facenet-head":
        overrides.setdefault("embedding_dim", 512)
    return NetConfig(kind=kind, **overrides)


def build_encoder(config: NetConfig):
    """Return a Keras model mapping float32 pixels (N, S, S, 3) in 0..255 to (N, D) features.

    Four conv blocks (conv -> batch norm -> ReLU -> max pool), the first strided to keep
    the cost low at 105x105, global average pooling (few weights, so less over-fitting to
    35 people than a big flatten-dense), dropout and a dense projection. The triplet kind
    ends with L2 normalisation so distances live in [0, 2] like FaceNet's. For
    facenet-head the encoder is the identity: FaceNet stays frozen outside this model.
    """
    import keras
    from keras import layers

    if not config.uses_crops:
        inp = keras.Input((config.embedding_dim,), name="facenet_embedding")
        return keras.Model(inp, layers.Identity()(inp), name="identity_encoder")
    inp = keras.Input((config.input_size, config.input_size, 3), name="face")
    # Per-image standardisation: the photos' exposure varies a lot, identity does not.
    x = layers.Lambda(_standardise, name="standardise")(inp)
    w = config.width
    for i, (filters, kernel, stride) in enumerate([(w, 5, 2), (2 * w, 3, 1), (4 * w, 3, 1), (8 * w, 3, 1)]):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(config.dropout, name="dropout")(x)
    x = layers.Dense(config.embedding_dim, name="embedding")(x)
    if config.kind == "scratch-triplet" or config.unit_features:
        x = layers.UnitNormalization(name="l2norm")(x)
    if config.kind == "scratch" and config.unit_features:
        # |e1 - e2| of unit vectors is ~0.1 per feature; scaled up, the head's single unit
        # needs no huge weights to reach confident probabilities.
        x = layers.Rescaling(UNIT_SCALE, name="scale")(x)
    return keras.Model(inp, x, name="encoder")


def _standardise(x):
    import tensorflow as tf

    return tf.image.per_image_standardization(x)


def build_head(config: NetConfig):
    """Return the Koch head: a Keras model mapping two (N, D) feature batches to (N, 1)
    same-person probabilities via |e1 - e2| -> [dense ReLU] -> dense -> sigmoid.

    The absolute difference makes the score symmetric in its two faces, and the single
    output unit is a learned weighting of the per-feature distances.
    """
    import keras
    from keras import layers

    a = keras.Input((config.embedding_dim,), name="a")
    b = keras.Input((config.embedding_dim,), name="b")
    x = layers.Subtract(name="diff")([a, b])
    x = layers.Lambda(_absolute, name="abs")(x)
    if config.hidden:
        x = layers.Dense(config.hidden, activation="relu", name="hidden")(x)
    out = layers.Dense(1, activation="sigmoid", name="same")(x)
    return keras.Model([a, b], out, name="head")


def _absolute(x):
    import tensorflow as tf

    return tf.abs(x)


class SiameseNet:
    """An encoder and (for the BCE kinds) a head, built from a NetConfig.

    Weights are saved as plain arrays (see models.siamese.io), not as a Keras archive, so
    the architecture always comes from this code and loading needs no custom objects.
    """

    def __init__(self, config: NetConfig, seed: int | None = None):
        if seed is not None:  # weight initialisation is random too: seed before building
            import keras

            keras.utils.set_random_seed(seed)
        self.config = config
        self.encoder = build_encoder(config)
        self.head = build_head(config) if config.has_head else None

    @property
    def trainable_weights(self) -> list:
        return self.encoder.trainable_weights + (self.head.trainable_weights if self.head else [])

    @property
    def weights(self) -> list:
        return self.encoder.weights + (self.head.weights if self.head else [])

    def count_params(self) -> int:
        """Number of weights (trainable or not) in encoder and head."""
        return self.encoder.count_params() + (self.head.count_params() if self.head else 0)

    def encode(self, x, training: bool = False):
        """Encoder features for a batch of crops (float 0..255) or FaceNet embeddings."""
        return self.encoder(x, training=training)

    def same_probability(self, e1, e2, training: bool = False):
        """Head output (N,) for paired feature rows; only for kinds with a head."""
        if self.head is None:
            raise TypeError(f"{self.config.kind} has no head; compare its features by distance")
        return self.head([e1, e2], training=training)[:, 0]
