"""Shared fixtures: the sample faces shipped in the repo, the full data set when present,
and one Recognizer (MTCNN + FaceNet) loaded once for the whole test run."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
GEORGIA_TECH = REPO.parent / "shared" / "datasets" / "georgia_tech" / "faces"


@pytest.fixture(scope="session")
def samples() -> Path:
    """samples/georgia_tech/{s2,s5,s11,s23,s37}/{1,5,9,13}.jpg — shipped, always present."""
    from facebot.lab.demo import SAMPLES

    return SAMPLES


@pytest.fixture(scope="session")
def georgia_tech() -> Path:
    """The full Georgia Tech faces (50 x 15) from ../shared; the test is skipped without it."""
    if not GEORGIA_TECH.is_dir():
        pytest.skip("../shared/datasets/georgia_tech is not present")
    return GEORGIA_TECH


from tests.postgres_server import postgres_server  # noqa: E402,F401  (session fixture: a real PostgreSQL)


@pytest.fixture()
def postgres_url(postgres_server) -> str:
    """postgresql:// URL of a fresh empty database on the session's PostgreSQL server."""
    return postgres_server.url(postgres_server.create_database())


@pytest.fixture(scope="session")
def recognizer():
    """One MTCNN + FaceNet recognizer for the whole run (loading takes a few seconds)."""
    from facebot.recognition import Recognizer

    return Recognizer()


@pytest.fixture()
def service(tmp_path, recognizer):
    """A FaceService over an empty gallery in a temporary folder."""
    from facebot.service import FaceService
    from facebot.storage import Gallery

    service = FaceService(Gallery(tmp_path / "gallery"), recognizer)
    service.cli_args = ["--data-dir", str(tmp_path / "gallery")]  # the same gallery for a `facebot` subprocess
    return service


@pytest.fixture(params=["tinydb", "postgresql"])
def service_on_each_store(request, tmp_path, recognizer):
    """A FaceService over an empty gallery: in a TinyDB folder, then in a fresh PostgreSQL
    database (skipped where no PostgreSQL server can be started). `cli_args` name the same
    gallery for a `facebot` subprocess."""
    from facebot.service import open_service

    if request.param == "tinydb":
        where = {"data_dir": tmp_path / "gallery"}
        cli_args = ["--data-dir", str(tmp_path / "gallery")]
    else:
        url = request.getfixturevalue("postgres_url")
        where = {"data_dir": None, "database_url": url}
        cli_args = ["--database-url", url]
    service = open_service(**where, recognizer=recognizer)
    service.cli_args = cli_args
    return service


@pytest.fixture()
def cli(tmp_path, recognizer, monkeypatch, capsys):
    """Run `facebot ARGS` in-process on a temporary gallery, reusing the loaded models.

    Returns (exit code, stdout, stderr); `cli.loads` counts model loads.
    """
    loads = []

    def shared_recognizer(detector="mtcnn", model=None, **kwargs):
        loads.append(detector)
        return recognizer if model in (None, "facenet") else recognizer.with_model(model)

    import facebot.recognition as recognition
    from facebot.cli.main import main

    monkeypatch.setattr(recognition, "Recognizer", shared_recognizer)
    data = tmp_path / "data"

    def run(*args):
        code = main(["--data-dir", str(data), *map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err

    run.data = data
    run.loads = loads
    return run
