"""`facebot demo`: the whole job on the sample faces shipped in the package (`facebot/samples/georgia_tech/`).

Enrolls the first photo of four people into a throw-away gallery, identifies their other
photos plus a fifth person who was never enrolled, and writes one annotated picture.
"""
from __future__ import annotations

import tempfile
from importlib.resources import files
from pathlib import Path

import numpy as np

# Package data, read through importlib.resources so the demo works from any folder once
# installed. facebot is installed as plain files (never zipped), so this is a real path.
SAMPLES = Path(str(files("facebot") / "samples" / "georgia_tech"))


def sample_people(root: Path = SAMPLES) -> dict[str, list[Path]]:
    """The shipped sample photos: {person folder: [photos in order]}."""
    people = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        people[folder.name] = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    return people


def mosaic(images: list[np.ndarray], columns: int = 4, cell: tuple[int, int] = (200, 260), gap: int = 20) -> np.ndarray:
    """Tile photos on a light background, like a group picture (one face per tile)."""
    import cv2

    rows = (len(images) + columns - 1) // columns
    w, h = cell
    canvas = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 235, np.uint8)
    for i, img in enumerate(images):
        scale = min(w / img.shape[1], h / img.shape[0])
        tile = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, columns)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        canvas[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return canvas


def run_demo(args) -> int:
    from facebot.service import open_service
    from facebot.recognition import load_image
    from facebot.recognition.draw import annotate, face_labels
    from facebot.recognition.images import encode_jpeg

    people = sample_people()
    names = list(people)
    enrolled, stranger = names[:-1], names[-1]
    print("loading models (MTCNN + FaceNet)...")
    with tempfile.TemporaryDirectory(prefix="facebot-demo-") as tmp:
        service = open_service(tmp, detector=args.detector, model=args.model, threshold=args.threshold)
        for name in enrolled:
            service.enroll(name, load_image(people[name][0]), actor="demo")
            print(f"enrolled {name} from {people[name][0].name}")
        probes = [(name, path) for name in enrolled for path in people[name][1:]] + [(stranger, p) for p in people[stranger]]
        correct = wrong_name = 0
        print(f"\nidentifying {len(probes)} photos (known when {service.rule.describe()}); {stranger} was never enrolled:")
        for truth, path in probes:
            results = service.identify(load_image(path), actor="demo", audit=False)
            expected = truth if truth in enrolled else "unknown"
            if not results:
                print(f"  {truth}/{path.name:<7} -> no face found")
                continue
            r = results[0]
            correct += r.label == expected
            wrong_name += r.known and r.label != expected
            verdict = "ok" if r.label == expected else ("WRONG PERSON" if r.known else "missed")
            print(f"  {f'{truth}/{path.name}':<12} -> {r.label:<8} (nearest {r.name}, distance {r.distance:.3f})  {verdict}")
        print(f"\n{correct}/{len(probes)} correct, {wrong_name} given a wrong name")
        group = mosaic([load_image(people[name][-1]) for name in names], columns=len(names))
        results = service.identify(group, actor="demo", audit=False)
        picture = annotate(group, face_labels(results))
        Path(args.out).write_bytes(encode_jpeg(picture))
        print(f"group picture: {len(results)} faces -> {', '.join(r.label for r in results)}; written to {args.out}")
    return 0
