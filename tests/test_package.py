"""The installed distribution: one import name, the command line from any folder."""
import json
import os
import subprocess
import sys
from importlib import metadata

import pytest

import facebot


def _editable() -> bool:
    direct_url = metadata.distribution("facebot").read_text("direct_url.json")
    return bool(direct_url) and json.loads(direct_url).get("dir_info", {}).get("editable", False)


def test_the_distribution_installs_only_the_facebot_package():
    if _editable():
        pytest.skip("an editable install maps the checkout; CI tests the built wheel")
    tops = {f.parts[0] for f in metadata.files("facebot") if f.parts[0] not in ("..",)}
    assert tops == {"facebot", f"facebot-{facebot.__version__}.dist-info"}
    assert (metadata.distribution("facebot").read_text("top_level.txt") or "facebot").split() == ["facebot"]


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
