"""Settings: `.env` parsing and the documented list of variables."""
import re
from pathlib import Path

import facebot
from facebot.config import load_bot_config, read_dotenv

REPO = Path(__file__).resolve().parent.parent


def test_dotenv_comments_quotes_and_export(tmp_path):
    env = tmp_path / ".env"
    env.write_text('FACEBOT_DATA_DIR=/srv/fb # prod\nexport FACEBOT_LANG="es"\n# a comment\n\nFACEBOT_HR_IDS=1,2\n')
    assert read_dotenv(env) == {"FACEBOT_DATA_DIR": "/srv/fb", "FACEBOT_LANG": "es", "FACEBOT_HR_IDS": "1,2"}


def test_dotenv_is_read_by_the_bot_settings(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=123:abc  # from BotFather\nFACEBOT_HR_IDS=7\n")
    monkeypatch.chdir(tmp_path)
    config = load_bot_config(env={})
    assert config.token == "123:abc" and config.hr_ids == {7}


def test_env_example_documents_every_variable_facebot_reads():
    package = Path(facebot.__file__).parent
    sources = [package, *(Path(__import__(f"facebot.{room}", fromlist=["_"]).__file__).parent
                          for room in ("bot", "camera", "cli", "lab", "models", "recognition", "storage"))]
    read = {name for folder in sources for path in folder.rglob("*.py")
            for name in re.findall(r"[\"']((?:FACEBOT|TELEGRAM)_[A-Z_]+)[\"']", path.read_text())}
    documented = set(read_dotenv(REPO / ".env.example"))
    assert read and read <= documented, f"missing from .env.example: {sorted(read - documented)}"
