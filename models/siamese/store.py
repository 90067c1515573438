"""Save and load a trained SiameseNet as one small .npz: its NetConfig, free-form metadata
(training identities, history, command) as JSON, and the weight arrays in order.

Plain arrays rather than a Keras archive: the architecture comes from our code, so a file
never needs custom-object registration or unsafe deserialisation, and it stays small.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from facebot.models.siamese.networks import NetConfig, SiameseNet

log = logging.getLogger(__name__)

FORMAT = "facebot-siamese-1"


def save_net(net: SiameseNet, path: str | Path, meta: dict | None = None) -> Path:
    """Write the network to PATH (.npz) atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"w{k:03d}": np.asarray(w.numpy()) for k, w in enumerate(net.weights)}
    header = {"format": FORMAT, "config": net.config.to_dict(), "meta": meta or {}}
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, header=np.asarray(json.dumps(header)), **arrays)
    os.replace(tmp, path)
    log.info("saved %s (%s parameters) to %s", net.config.kind, f"{net.count_params():,}", path)
    return path


def read_header(path: str | Path) -> dict:
    """The {"format", "config", "meta"} header of a saved network, without building it."""
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(str(z["header"]))
    if header.get("format") != FORMAT:
        raise ValueError(f"{path} is not a facebot Siamese network (format {header.get('format')!r})")
    return header


def load_net(path: str | Path) -> tuple[SiameseNet, dict]:
    """Rebuild the network saved at PATH and load its weights; return (net, meta).

    meta gains "digest": a short hash of the weights, so features of two different trainings
    are never mistaken for one another (the gallery tags samples with it).
    """
    header = read_header(path)
    net = SiameseNet(NetConfig(**header["config"]))
    with np.load(path, allow_pickle=False) as z:
        arrays = [z[f"w{k:03d}"] for k in range(len(net.weights))]
        extra = len([k for k in z.files if k.startswith("w")]) - len(arrays)
    if extra:
        raise ValueError(f"{path} holds {extra} more weight arrays than a {net.config.kind} network")
    for variable, value in zip(net.weights, arrays):
        if tuple(variable.shape) != value.shape:
            raise ValueError(f"{path}: weight {variable.path} has shape {value.shape}, expected {tuple(variable.shape)}")
        variable.assign(value)
    digest = hashlib.sha1(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()[:12]
    return net, {**header["meta"], "digest": digest}
