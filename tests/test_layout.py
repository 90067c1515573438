"""The house rules: dependencies point one way (README, "Layout")."""
import ast
from pathlib import Path

import pytest

# room -> the facebot rooms its modules must never import
FORBIDDEN = {
    "cli": {"models", "storage"},
    "bot": {"models", "storage", "cli", "camera", "lab"},
    "camera": {"models", "storage", "cli", "bot", "lab"},
    "recognition": {"storage", "service", "cli", "bot", "camera", "lab"},
    "storage": {"recognition", "models", "service", "cli", "bot", "camera", "lab"},
    "models": {"storage", "service", "cli", "bot", "camera", "lab", "recognition"},
}


def facebot_imports(path: Path) -> set[str]:
    """The facebot rooms a module imports: {"recognition", "service", ...}."""
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        rooms |= {n.split(".")[1] for n in names if n.startswith("facebot.") and n.count(".") >= 1}
    return rooms


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_dependencies_point_one_way(room):
    package = __import__(f"facebot.{room}", fromlist=["_"])
    folder = Path(package.__file__).parent
    broken = {str(p.relative_to(folder)): sorted(facebot_imports(p) & FORBIDDEN[room]) for p in folder.rglob("*.py")}
    assert {p: rooms for p, rooms in broken.items() if rooms} == {}


def test_every_room_is_under_the_one_import_name():
    import importlib

    for room in ("bot", "camera", "cli", "lab", "models", "recognition", "storage", "service"):
        assert importlib.import_module(f"facebot.{room}").__name__ == f"facebot.{room}"
