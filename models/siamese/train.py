"""Training: PK batches through the shared encoder, a pair or triplet loss, validation on
held-out training identities after every epoch, early stopping, and a time budget.

The loop is written out (rather than `keras.Model.fit`) because one encoder pass over a
P x K batch feeds every pair or triplet of that batch, which fit's one-input-one-target
view does not express.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np

from facebot.models.siamese.data import FaceSet, augment, center_crop, pk_batches, resize_crops
from facebot.models.siamese.networks import NetConfig, SiameseNet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; stored with the weights so a run can be repeated.

    people x per_person images make one batch; an epoch is steps_per_epoch batches;
    training stops after `patience` epochs without a better validation ranking accuracy
    (see ranking_accuracy: threshold-free, so pair and triplet kinds are judged alike; ties
    go to the lower validation loss), after
    max_epochs, or once max_seconds have passed. The best epoch's weights are kept, or the
    last epoch's with restore_best=False (validation then only reports).
    """

    seed: int = 0
    people: int = 16
    per_person: int = 4
    steps_per_epoch: int = 40
    max_epochs: int = 40
    patience: int = 6
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    margin: float = 0.3
    max_seconds: float | None = None
    restore_best: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class History:
    """Per-epoch records ({epoch, loss, accuracy, val_loss, val_accuracy, seconds}), the
    best epoch (whose weights the model holds), and why training stopped."""

    epochs: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped: str = ""

    def series(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs]

    def to_dict(self) -> dict:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "stopped": self.stopped}


# -- losses (TensorFlow ops on one batch) ---------------------------------------------------
def pair_loss(net: SiameseNet, emb, labels, training: bool):
    """Binary cross-entropy of the head over every pair of the batch, positives and
    negatives weighted half and half (a P x K batch has about P times more different-
    person pairs). Returns (loss, balanced accuracy at p = 0.5)."""
    import tensorflow as tf

    n = tf.shape(emb)[0]
    i, j = tf.meshgrid(tf.range(n), tf.range(n), indexing="ij")
    upper = i < j
    i, j = tf.boolean_mask(i, upper), tf.boolean_mask(j, upper)
    same = tf.cast(tf.equal(tf.gather(labels, i), tf.gather(labels, j)), tf.float32)
    p = tf.clip_by_value(net.same_probability(tf.gather(emb, i), tf.gather(emb, j), training=training), 1e-7, 1 - 1e-7)
    bce = -(same * tf.math.log(p) + (1 - same) * tf.math.log(1 - p))
    pos, neg = tf.reduce_sum(same), tf.reduce_sum(1 - same)
    loss = 0.5 * tf.reduce_sum(bce * same) / tf.maximum(pos, 1.0) + 0.5 * tf.reduce_sum(bce * (1 - same)) / tf.maximum(neg, 1.0)
    right = tf.cast(tf.equal(tf.cast(p > 0.5, tf.float32), same), tf.float32)
    acc = 0.5 * tf.reduce_sum(right * same) / tf.maximum(pos, 1.0) + 0.5 * tf.reduce_sum(right * (1 - same)) / tf.maximum(neg, 1.0)
    return loss, acc


def ranking_accuracy(similarity, labels):
    """Fraction of all (anchor, positive, negative) triplets where the anchor is more
    similar to its positive than to its negative: a threshold-free measure (like a ROC
    area per anchor) that judges the pair and triplet kinds alike."""
    import tensorflow as tf

    same = tf.equal(labels[:, None], labels[None, :])
    positive = tf.logical_and(same, tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool)))
    valid = tf.logical_and(positive[:, :, None], tf.logical_not(same)[:, None, :])
    ok = tf.logical_and(valid, similarity[:, :, None] > similarity[:, None, :])
    return tf.reduce_sum(tf.cast(ok, tf.float32)) / tf.maximum(tf.reduce_sum(tf.cast(valid, tf.float32)), 1.0)


def similarities(net: SiameseNet, emb):
    """(N, N) similarity of a batch's features: the head's probability, else -L2 distance."""
    import tensorflow as tf

    if net.head is None:
        return -pairwise_distances(emb)
    n = tf.shape(emb)[0]
    i, j = tf.meshgrid(tf.range(n), tf.range(n), indexing="ij")
    i, j = tf.reshape(i, [-1]), tf.reshape(j, [-1])
    return tf.reshape(net.same_probability(tf.gather(emb, i), tf.gather(emb, j)), [n, n])


def pairwise_distances(emb):
    """(N, N) Euclidean distances; the epsilon keeps the square root's gradient finite at 0."""
    import tensorflow as tf

    sq = tf.reduce_sum(emb**2, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * tf.matmul(emb, emb, transpose_b=True)
    return tf.sqrt(tf.maximum(d2, 0.0) + 1e-12)


def triplet_loss(emb, labels, margin: float):
    """Batch-hard triplet loss (Hermans et al., 2017): each image is an anchor with its
    farthest same-person image as positive and nearest other-person image as negative;
    loss = mean(max(0, d(a, p) - d(a, n) + margin)). Returns (loss, fraction of all
    anchor/positive/negative triplets of the batch with d(a, p) < d(a, n))."""
    import tensorflow as tf

    d = pairwise_distances(emb)
    same = tf.equal(labels[:, None], labels[None, :])
    eye = tf.eye(tf.shape(emb)[0], dtype=tf.bool)
    positive = tf.logical_and(same, tf.logical_not(eye))
    negative = tf.logical_not(same)
    hardest_pos = tf.reduce_max(tf.where(positive, d, 0.0), axis=1)
    hardest_neg = tf.reduce_min(tf.where(negative, d, 1e9), axis=1)
    loss = tf.reduce_mean(tf.nn.relu(hardest_pos - hardest_neg + margin))
    return loss, ranking_accuracy(-d, labels)


# -- inputs ----------------------------------------------------------------------------------
def prepare_inputs(data: FaceSet, config: NetConfig) -> np.ndarray:
    """The stored inputs of a kind: crops resized to config.crop_size (uint8), or embeddings."""
    return resize_crops(data.crops, config.crop_size) if config.uses_crops else data.embeddings


def eval_inputs(stored: np.ndarray, config: NetConfig) -> np.ndarray:
    """What the network sees at test time: the central window of each crop, as float32."""
    if not config.uses_crops:
        return stored.astype(np.float32)
    return center_crop(stored, config.input_size).astype(np.float32)


def encode_all(net: SiameseNet, inputs: np.ndarray, batch: int = 128) -> np.ndarray:
    """Encoder features (N, D) for prepared float inputs, in batches, inference mode."""
    if len(inputs) == 0:
        return np.zeros((0, net.config.embedding_dim), np.float32)
    return np.concatenate([np.asarray(net.encode(inputs[k:k + batch], training=False))
                           for k in range(0, len(inputs), batch)]).astype(np.float32)


# -- the loop ----------------------------------------------------------------------------------
def train(net: SiameseNet, fit: FaceSet, val: FaceSet, config: TrainConfig = TrainConfig(),
          progress: Callable[..., Iterable] | None = None) -> History:
    """Train `net` in place on the `fit` identities, validating on the `val` identities
    (other people) after each epoch; return the History. The net ends with the weights of
    its best validation epoch.

    `progress(iterable, total=, desc=)` wraps each epoch's steps (e.g. a tqdm bar).
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)  # python, numpy and TensorFlow seeds at once
    rng = np.random.default_rng(config.seed)
    kind = net.config
    fit_x, val_x = prepare_inputs(fit, kind), eval_inputs(prepare_inputs(val, kind), kind)
    val_labels = tf.constant(val.labels, tf.int32)
    batches = pk_batches(fit.labels, config.people, config.per_person, rng)
    optimizer = keras.optimizers.AdamW(learning_rate=config.learning_rate, weight_decay=config.weight_decay)

    def loss_of(emb, labels, training):
        if kind.has_head:
            return pair_loss(net, emb, labels, training)
        return triplet_loss(emb, labels, config.margin)

    @tf.function(reduce_retracing=True)
    def step(x, labels):
        with tf.GradientTape() as tape:
            loss, acc = loss_of(net.encode(x, training=True), labels, True)
        weights = net.trainable_weights
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss, acc

    history, best, best_weights, waited = History(), (-1.0, 0.0), None, 0
    started = time.monotonic()
    wrap = progress or (lambda it, **_: it)
    for epoch in range(1, config.max_epochs + 1):
        losses, accs = [], []
        for _ in wrap(range(config.steps_per_epoch), total=config.steps_per_epoch, desc=f"{kind.kind} epoch {epoch}"):
            rows = next(batches)
            x = augment(fit_x[rows], kind.input_size, rng) if kind.uses_crops else fit_x[rows]
            loss, acc = step(tf.constant(x, tf.float32), tf.constant(fit.labels[rows], tf.int32))
            losses.append(float(loss))
            accs.append(float(acc))
        val_emb = tf.constant(encode_all(net, val_x))
        val_loss, val_acc = (float(v) for v in loss_of(val_emb, val_labels, False))
        val_rank = float(ranking_accuracy(similarities(net, val_emb), val_labels))
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "accuracy": float(np.mean(accs)),
                  "val_loss": val_loss, "val_accuracy": val_acc, "val_ranking": val_rank,
                  "seconds": round(time.monotonic() - started, 1)}
        history.epochs.append(record)
        log.info("%s epoch %d: loss %.4f acc %.3f | val loss %.4f acc %.3f ranking %.3f (%.0f s)", kind.kind,
                 epoch, record["loss"], record["accuracy"], val_loss, val_acc, val_rank, record["seconds"])
        # Ranking accuracy saturates at 1.0 on easy validation people (FaceNet features);
        # the validation loss then breaks the tie.
        score = (val_rank, -val_loss)
        if score > best:
            best, best_weights, waited, history.best_epoch = score, [w.numpy() for w in net.weights], 0, epoch
        else:
            waited += 1
        if waited >= config.patience:
            history.stopped = f"no better validation ranking accuracy for {config.patience} epochs"
            break
        if config.max_seconds is not None and time.monotonic() - started > config.max_seconds:
            history.stopped = f"time budget of {config.max_seconds:.0f} s reached"
            break
    else:
        history.stopped = f"{config.max_epochs} epochs done"
    if not config.restore_best:
        history.best_epoch = len(history.epochs)
    elif best_weights is not None:
        for variable, value in zip(net.weights, best_weights):
            variable.assign(value)
    log.info("%s: keeps epoch %d (best validation ranking accuracy %.3f); stopped: %s", kind.kind, history.best_epoch,
             best[0], history.stopped)
    return history
