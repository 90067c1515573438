"""facebot benchmarks (issue 6): speed and memory of every stage, against the issue's targets.

Run from the repository root::

    .venv/bin/python benchmarks/run.py            # full run, under 10 minutes on 2 cores
    .venv/bin/python benchmarks/run.py --quick    # fewer frames and repeats, under 2 minutes

It prints a table and writes JSON (default benchmarks/results/latest.json) holding, for
every measurement, the median with its spread (min, max, quartiles) over repeated runs,
plus the machine it ran on. Every timed function is run once untimed first (warm-up),
timings use time.perf_counter, and all inputs are built from the sample photos shipped
in samples/georgia_tech, except the real-photo rows, composed from the LFW photos in
../shared/datasets/lfw_subset; nothing is downloaded.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python benchmarks/run.py` puts only benchmarks/ on the path
    sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from facebot.lab.demo import SAMPLES  # noqa: E402  (the samples shipped in the package)
from facebot.recognition.embed import DEFAULT_BACKEND  # noqa: E402
PEOPLE = ("s2", "s5", "s11", "s23", "s37")
NUMBERS = (1, 5, 9, 13)
BACKGROUND = 200  # grey level of the canvas the faces are pasted on


# -- settings ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """How much work each measurement does; --quick trades precision for time."""

    quick: bool
    embed_repeats: int  # timed calls per backend and batch size
    detect_single_frames: int  # 640x480 frames with one face (up to 20)
    detect_group_frames: int  # 640x480 group pictures with five faces (up to 4)
    detect_passes: int  # passes over all frames per detector
    identify_repeats: int
    search_sizes: tuple[int, ...]
    loop_sizes: tuple[int, ...]  # sizes at which the Python-loop search is timed
    search_repeats: int
    loop_repeats: int
    enroll_repeats: int
    enroll_prefill: int  # people already in the gallery for the second enrollment measurement
    gallery_people: int
    gallery_load_repeats: int
    bot_rounds: int  # rounds of 8 users x 3 photos, per detector (current and previous, taking turns)
    photo_repeats: int  # timed end-to-end runs per real photo, facebot
    reference_repeats: int  # the same for the reference (face_recognition), 12 MP photos get one
    camera_frames: int  # frames per camera stream, per detector
    seed: int = 0


FULL = Settings(quick=False, embed_repeats=40, detect_single_frames=20, detect_group_frames=4, detect_passes=3,
                identify_repeats=20, search_sizes=(100, 10_000, 100_000), loop_sizes=(100, 10_000, 100_000),
                search_repeats=50, loop_repeats=3, enroll_repeats=3, enroll_prefill=1_000, gallery_people=10_000,
                gallery_load_repeats=5, bot_rounds=4, photo_repeats=7, reference_repeats=2, camera_frames=60)
QUICK = Settings(quick=True, embed_repeats=5, detect_single_frames=5, detect_group_frames=1, detect_passes=1,
                 identify_repeats=3, search_sizes=(100, 10_000, 100_000), loop_sizes=(100, 10_000),
                 search_repeats=20, loop_repeats=2, enroll_repeats=1, enroll_prefill=1_000, gallery_people=10_000,
                 gallery_load_repeats=1, bot_rounds=1, photo_repeats=3, reference_repeats=1, camera_frames=20)


# -- timing helpers -------------------------------------------------------------------------

def summarise(values: list[float], scale: float = 1.0) -> dict:
    """Median, quartiles, min and max of `values` (multiplied by `scale`), and how many there were."""
    arr = np.asarray(values, dtype=np.float64) * scale
    q1, median, q3 = np.percentile(arr, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3),
            "min": float(arr.min()), "max": float(arr.max()), "n": int(arr.size)}


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Call `fn` `warmup` times untimed, then `repeats` times; return each call's seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- inputs built from the shipped samples --------------------------------------------------

def sample_photo(person: str, number: int) -> np.ndarray:
    from facebot.recognition import load_image

    return load_image(SAMPLES / person / f"{number}.jpg")


def all_samples() -> list[tuple[str, int]]:
    """The 20 shipped photos as (person, number), person by person."""
    return [(person, number) for person in PEOPLE for number in NUMBERS]


Rect = tuple[int, int, int, int]  # x, y, w, h: where a sample photo (so one face) lies in a frame


def place_on_canvas(image: np.ndarray, size: tuple[int, int], fill: float = 1.0) -> tuple[np.ndarray, float, int, int]:
    """Scale `image` to fill `fill` of a (width, height) canvas, keeping its aspect, and centre it.

    Returns the canvas, the scale and the (x, y) offset where the image was put.
    """
    width, height = size
    scale = fill * min(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    y, x = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return canvas, scale, x, y


def one_face_frame(person: str, number: int, size: tuple[int, int] = (640, 480)) -> tuple[np.ndarray, list[Rect]]:
    """One sample photo pasted, scaled to 60% of the height, on a plain frame of `size`; and where it lies."""
    photo = sample_photo(person, number)
    frame, scale, x, y = place_on_canvas(photo, size, fill=0.6)
    return frame, [(x, y, round(photo.shape[1] * scale), round(photo.shape[0] * scale))]


def mosaic_tiles(photos: list[np.ndarray], columns: int) -> list[Rect]:
    """Where facebot.lab.demo.mosaic puts each photo, following its layout (default cell and gap)."""
    import inspect

    from facebot.lab.demo import mosaic

    defaults = inspect.signature(mosaic).parameters
    (w, h), gap = defaults["cell"].default, defaults["gap"].default
    tiles = []
    for i, img in enumerate(photos):
        scale = min(w / img.shape[1], h / img.shape[0])
        r, c = divmod(i, columns)
        tiles.append((gap + c * (w + gap), gap + r * (h + gap), int(img.shape[1] * scale), int(img.shape[0] * scale)))
    return tiles


def group_frame(people: list[tuple[str, int]], size: tuple[int, int] = (640, 480)) -> tuple[np.ndarray, list[Rect]]:
    """A group picture (facebot.lab.demo.mosaic of the photos, 3 per row) fitted on a frame of `size`; and where each photo lies."""
    from facebot.lab.demo import mosaic

    photos = [sample_photo(p, n) for p, n in people]
    frame, scale, x, y = place_on_canvas(mosaic(photos, columns=3), size)
    tiles = [(round(x + tx * scale), round(y + ty * scale), round(tw * scale), round(th * scale))
             for tx, ty, tw, th in mosaic_tiles(photos, columns=3)]
    return frame, tiles


def score_faces(faces, truth: list[Rect]) -> tuple[int, int]:
    """(hits, false positives): a photo is found when a detected box's centre lies in it; any
    other box (outside every photo, or a second box in the same photo) is a false positive."""
    hit = set()
    false = 0
    for face in faces:
        fx, fy, fw, fh = face.box
        cx, cy = fx + fw / 2, fy + fh / 2
        inside = [i for i, (x, y, w, h) in enumerate(truth) if x <= cx < x + w and y <= cy < y + h and i not in hit]
        if inside:
            hit.add(inside[0])
        else:
            false += 1
    return len(hit), false


def face_crops() -> np.ndarray:
    """The 160x160 face crops of the 20 sample photos, found with the default detector."""
    from facebot.recognition.align import crop_face
    from facebot.recognition.detect import MTCNNDetector

    detector = MTCNNDetector()
    crops = []
    for person, number in all_samples():
        rgb = sample_photo(person, number)
        faces = detector.detect(rgb)
        if faces:
            crops.append(crop_face(rgb, faces[0].box))
    return np.stack(crops)


def random_unit_vectors(count: int, rng: np.random.Generator, dim: int = 512) -> np.ndarray:
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# -- measurements ---------------------------------------------------------------------------

def time_interleaved(fns: dict[str, Callable[[int], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time several alternatives turn about (a, b, a, b, ...) so that a change in background
    load during the run hits each of them alike; fn(i) gets the repeat number."""
    for fn in fns.values():
        for i in range(warmup):
            fn(i)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - start)
    return times


def bench_embedding(s: Settings) -> dict:
    """ms per face at batch 1 and 16 for the TensorFlow, float TFLite and int8 TFLite backends, and how far apart their outputs are."""
    from facebot.recognition.embed import Embedder

    crops = face_crops()
    batch16 = np.concatenate([crops, crops])[:16]
    log("embedding: loading both backends")
    embedders = {backend: Embedder(backend=backend) for backend in ("tf", "tflite", "tflite-int8")}
    log("embedding: batch 1")
    one = time_interleaved({b: lambda i, e=e: e.embed(crops[i % len(crops)][None]) for b, e in embedders.items()},
                           s.embed_repeats, warmup=2)
    log("embedding: batch 16")
    sixteen = time_interleaved({b: lambda i, e=e: e.embed(batch16) for b, e in embedders.items()},
                               max(3, s.embed_repeats // 4))
    result: dict = {"faces": len(crops)}
    for backend in embedders:
        result[backend] = {"batch1_ms_per_face": summarise(one[backend], 1000),
                           "batch16_ms_per_face": summarise(sixteen[backend], 1000 / 16)}
    for batch in ("batch1_ms_per_face", "batch16_ms_per_face"):
        result[f"speedup_{batch.split('_')[0]}"] = result["tf"][batch]["median"] / result["tflite"][batch]["median"]
        result[f"int8_speedup_{batch.split('_')[0]}"] = result["tf"][batch]["median"] / result["tflite-int8"][batch]["median"]
    reference = embedders["tf"].embed(crops)
    result["max_abs_diff"] = float(np.max(np.abs(reference - embedders["tflite"].embed(crops))))  # lossless
    result["quantized_max_distance"] = float(np.max(np.linalg.norm(reference - embedders["tflite-int8"].embed(crops), axis=1)))
    return result


def detection_frames(s: Settings) -> list[tuple[str, np.ndarray, list[Rect]]]:
    """(kind, 640x480 RGB frame, where its faces are): one-face frames, then five-face group pictures."""
    frames = [("one face", *one_face_frame(p, n)) for p, n in all_samples()[: s.detect_single_frames]]
    for number in NUMBERS[: s.detect_group_frames]:
        frames.append(("group", *group_frame([(p, number) for p in PEOPLE])))
    return frames


def bench_detection(s: Settings) -> dict:
    """ms per 640x480 frame and faces found, for MTCNN as the package runs it (one pass at up
    to 1024 px, no padding), our default MTCNN, MTCNN at 320 px and Haar.

    Every frame goes through all four detectors in turn, so background load hits them alike.
    """
    from facebot.recognition.detect import HaarDetector, MTCNNDetector

    frames = detection_frames(s)
    log("detection: loading detectors")
    detectors = {"mtcnn_package": MTCNNDetector(compiled=False, float32=False, tflite_pnet=False, pad=0.0, first_side=None),
                 "mtcnn_default": MTCNNDetector(),
                 "mtcnn_320": MTCNNDetector(max_side=320), "haar": HaarDetector()}
    for detector in detectors.values():  # warm-up: traces the compiled stages
        detector.detect(frames[0][1])
        detector.detect(frames[-1][1])
    times = {name: {"one face": [], "group": []} for name in detectors}
    found = {name: {"one face": 0, "group": 0, "false positives": 0} for name in detectors}
    for pass_number in range(s.detect_passes):
        log(f"detection: pass {pass_number + 1}/{s.detect_passes} over {len(frames)} frames")
        for kind, frame, truth in frames:
            for name, detector in detectors.items():
                start = time.perf_counter()
                faces = detector.detect(frame)
                times[name][kind].append(time.perf_counter() - start)
                if pass_number == 0:
                    hits, false = score_faces(faces, truth)
                    found[name][kind] += hits
                    found[name]["false positives"] += false
    result: dict = {"frames": len(frames), "faces_present": sum(len(t) for _, _, t in frames), "frame_size": "640x480"}
    for name, by_kind in times.items():
        result[name] = {"ms_per_frame": summarise(by_kind["one face"] + by_kind["group"], 1000),
                        "ms_one_face_frame": summarise(by_kind["one face"], 1000),
                        "ms_group_frame": summarise(by_kind["group"], 1000) if by_kind["group"] else None,
                        "faces_found": found[name]["one face"] + found[name]["group"],
                        "false_positives": found[name]["false positives"], "faces_found_by_kind": found[name]}
    result["speedup_default_vs_package"] = (result["mtcnn_package"]["ms_per_frame"]["median"]
                                            / result["mtcnn_default"]["ms_per_frame"]["median"])
    return result


def gallery_matcher(recognizer, people: int, rng: np.random.Generator):
    """A Matcher of `people` people: the five sample people (from photo 1) plus random strangers."""
    from facebot.recognition import Matcher

    labels, rows = [], []
    for person in PEOPLE:
        labels.append(person)
        rows.append(recognizer.faces(sample_photo(person, 1))[0].embedding)
    strangers = random_unit_vectors(people - len(rows), rng)
    labels += [f"stranger {i}" for i in range(len(strangers))]
    return Matcher(labels, np.concatenate([np.stack(rows), strangers]))


def bench_identify(s: Settings) -> dict:
    """End to end for 1280x960 JPEGs: decode, detect, embed and match against 100 people."""
    from facebot.recognition import Recognizer, decode_image
    from facebot.recognition.images import encode_jpeg

    recognizer = Recognizer()
    matcher = gallery_matcher(recognizer, 100, np.random.default_rng(s.seed))
    photos = {
        "one_face": encode_jpeg(one_face_frame("s2", 5, (1280, 960))[0]),
        "six_faces": encode_jpeg(group_frame([(p, 9) for p in PEOPLE] + [("s2", 13)], (1280, 960))[0]),
    }
    result: dict = {"gallery_people": len(matcher), "image_size": "1280x960"}
    for name, data in photos.items():
        log(f"identify: {name}")
        times = time_calls(lambda: recognizer.identify(decode_image(data), matcher), s.identify_repeats, warmup=2)
        found = recognizer.identify(decode_image(data), matcher)
        result[name] = {"ms": summarise(times, 1000), "jpeg_bytes": len(data), "faces_found": len(found),
                        "names": sorted(r.label for r in found)}
    return result


# -- real photos and the camera, against face_recognition ------------------------------------

SHARED = REPO.parent / "shared" / "datasets"
LFW = SHARED / "lfw_subset"
PHOTO_SIZES = {"0.3": (640, 480), "1": (1152, 864), "3": (2048, 1536), "12": (4000, 3000)}  # megapixels: (w, h)
GROUP = 7  # people in a group photo, as in the issue's selfie


def previous_detector(max_side: int = 1024):
    """The detector as it was before the real-photo work: the `mtcnn` package's code with
    the compiled, float32 and TFLite-PNet speed-ups, one pass at `max_side`, no padding."""
    from facebot.recognition.detect import MTCNNDetector

    return MTCNNDetector(max_side=max_side, lite=False, pad=0.0, first_side=None)


def lfw_photos() -> list[Path]:
    """The 250 x 250 LFW press photos in ../shared (one person in the middle of each)."""
    photos = sorted(LFW.glob("*/*.jpg"))
    if not photos:
        raise FileNotFoundError(f"{LFW} holds no photos: the real-photo rows need ../shared/datasets/lfw_subset")
    return photos


def wall(size: tuple[int, int], seed: int) -> np.ndarray:
    """A background without faces: smooth colour blotches plus sensor-like noise, so the
    JPEG is about as large as a camera's (a flat canvas would compress to nothing)."""
    width, height = size
    rng = np.random.default_rng(seed)
    blotches = cv2.resize(rng.uniform(40, 220, (6, 8, 3)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(blotches + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)


def paste_photo(canvas: np.ndarray, photo: np.ndarray, x: int, y: int, height: int) -> tuple[float, float, float]:
    """Paste `photo` scaled to `height` px with its top left at (x, y), cut by the canvas's
    edges; returns (x, y) of its face's centre and the face's width (LFW: the face is in
    the middle, about 0.42 of the photo wide, its centre at 0.47 of the height)."""
    scale = height / photo.shape[0]
    img = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                     interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(canvas.shape[1], x + img.shape[1]), min(canvas.shape[0], y + img.shape[0])
    canvas[y0:y1, x0:x1] = img[y0 - y : y1 - y, x0 - x : x1 - x]
    return x + 0.5 * img.shape[1], y + 0.47 * img.shape[0], 0.42 * img.shape[1]


def real_photo(kind: str, size: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """A photo of `size` composed from LFW press photos, and its faces (x, y, width):
    'one face': one person filling 60% of the height (the face about 25%), as a portrait;
    'group': GROUP people side by side across the frame, alternately a little higher and
    lower (faces about 6% of the width), as a group photo."""
    from facebot.recognition import load_image

    width, height = size
    photos = lfw_photos()
    canvas = wall(size, seed)
    rng = np.random.default_rng(seed)
    if kind == "one face":
        person = load_image(photos[int(rng.integers(len(photos)))])
        return canvas, [paste_photo(canvas, person, int(width * 0.3), int(height * 0.25), int(height * 0.6))]
    tile = width / GROUP
    faces = []
    for i, index in enumerate(rng.choice(len(photos), GROUP, replace=False)):
        person = load_image(photos[index])
        faces.append(paste_photo(canvas, person, int((i - 0.05) * tile), int(height * (0.35 + 0.08 * (i % 2))), int(tile * 1.1)))
    return canvas, faces


def faces_found(boxes: list[tuple[int, int, int, int]], faces: list[tuple[float, float, float]]) -> int:
    """How many of `faces` (x, y, width) have a box whose centre lies within half a face width."""
    return sum(any(abs(bx + bw / 2 - x) < w / 2 and abs(by + bh / 2 - y) < w / 2 for bx, by, bw, bh in boxes)
               for x, y, w in faces)


class Reference:
    """The library facebot is compared with, end to end on a JPEG file: read and decode,
    find the faces, embed them and match them against 100 known people.

    face_recognition (dlib: HOG detector, one upsampling, then the ResNet embedding) with
    its documented calls, where it is installed; otherwise the `mtcnn` package's plain path
    (MTCNN().detect_faces on the full photo) with FaceNet on TensorFlow, and `name` says so.
    """

    def __init__(self, rng: np.random.Generator):
        try:
            import face_recognition
        except ImportError:
            face_recognition = None
        self._fr = face_recognition
        if face_recognition is not None:
            self.name = f"face_recognition {getattr(face_recognition, '__version__', '?')}"
            self._known = rng.standard_normal((100, 128)) * 0.1
        else:
            from mtcnn import MTCNN

            from facebot.recognition.embed import Embedder

            self.name = "mtcnn package plain path + FaceNet (face_recognition not installed)"
            self._mtcnn, self._embedder = MTCNN(), Embedder(backend="tf")
            self._known = random_unit_vectors(100, rng)

    def __call__(self, path: Path) -> list[tuple[int, int, int, int]]:
        """Boxes (x, y, w, h) of the faces found in the photo at `path`, each matched."""
        if self._fr is not None:
            return self.identify(self._fr.load_image_file(str(path)))
        return self.identify(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))

    def identify(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """The same for a decoded RGB frame (a camera's)."""
        if self._fr is not None:
            fr = self._fr
            locations = fr.face_locations(rgb)
            for encoding in fr.face_encodings(rgb, locations):
                fr.face_distance(self._known, encoding).argmin()
            return [(left, top, right - left, bottom - top) for top, right, bottom, left in locations]
        from facebot.recognition.align import crop_face

        boxes = [tuple(int(v) for v in face["box"]) for face in self._mtcnn.detect_faces(rgb)]
        if boxes:
            embeddings = self._embedder.embed(np.stack([crop_face(rgb, b) for b in boxes]))
            for e in embeddings:
                np.linalg.norm(self._known - e, axis=1).argmin()
        return boxes


def bench_photos(s: Settings) -> dict:
    """End to end per real photo, from the JPEG file to a name per face, facebot against the
    reference (face_recognition): one face and a group of seven, at 0.3, 1, 3 and 12 megapixels.

    facebot: Path.read_bytes, decode_photo (big JPEGs decoded at reduced size), then
    Recognizer.identify against 100 people. Both run turn about on the same files.
    """
    from facebot.recognition import Recognizer
    from facebot.recognition.images import decode_photo, encode_jpeg

    rng = np.random.default_rng(s.seed)
    recognizer = Recognizer()
    recognizer.warm_up()
    matcher = gallery_matcher(recognizer, 100, rng)
    reference = Reference(rng)
    log(f"photos: reference is {reference.name}")

    def facebot(path: Path) -> list[tuple[int, int, int, int]]:
        return [r.box for r in recognizer.identify(decode_photo(path.read_bytes()), matcher)]

    result: dict = {"reference": reference.name, "gallery_people": len(matcher), "photos": {}}
    with tempfile.TemporaryDirectory(prefix="facebot-bench-") as tmp:
        for megapixels, size in PHOTO_SIZES.items():
            for kind in ("one face", "group"):
                rgb, faces = real_photo(kind, size, seed=len(result["photos"]))
                path = Path(tmp) / f"{kind.replace(' ', '_')}_{megapixels}mp.jpg"
                path.write_bytes(encode_jpeg(rgb, quality=90))
                del rgb
                log(f"photos: {kind}, {megapixels} MP ({size[0]} x {size[1]}, {path.stat().st_size / 1e6:.1f} MB)")
                ref_repeats = 1 if megapixels == "12" else s.reference_repeats
                fns = {"facebot": lambda: facebot(path), "reference": lambda: reference(path)}
                fns["facebot"]()
                if megapixels != "12":  # a 12 MP photo takes the reference several seconds: no warm-up there
                    fns["reference"]()
                times: dict[str, list[float]] = {"facebot": [], "reference": []}
                found, boxes_count = {}, {}
                for i in range(s.photo_repeats):
                    for name, fn in fns.items():
                        if name == "reference" and i >= ref_repeats:
                            continue
                        start = time.perf_counter()
                        boxes = fn()
                        times[name].append(time.perf_counter() - start)
                        found[name], boxes_count[name] = faces_found(boxes, faces), len(boxes)
                row = {"megapixels": megapixels, "size": f"{size[0]}x{size[1]}", "kind": kind, "faces": len(faces),
                       "jpeg_bytes": path.stat().st_size}
                for name in fns:
                    # boxes: every face returned, the LFW photos' bystanders included
                    row[name] = {"ms": summarise(times[name], 1000), "faces_found": found[name], "boxes": boxes_count[name]}
                row["ratio"] = row["reference"]["ms"]["median"] / row["facebot"]["ms"]["median"]
                result["photos"][f"{kind}, {megapixels} MP"] = row
    ratios = [row["ratio"] for row in result["photos"].values()]
    result["min_ratio"], result["geomean_ratio"] = min(ratios), float(np.exp(np.mean(np.log(ratios))))
    return result


def camera_frames(count: int, size: tuple[int, int] = (640, 480)) -> tuple[list[np.ndarray], int]:
    """`count` frames of a camera stream: three sample people side by side, drifting a few
    pixels from frame to frame; and how many faces each frame holds."""
    width, height = size
    people = [sample_photo(p, 5) for p in PEOPLE[:3]]
    frames = []
    for i in range(count):
        frame = np.full((height, width, 3), BACKGROUND, np.uint8)
        for j, person in enumerate(people):
            scaled = cv2.resize(person, None, fx=1.1, fy=1.1, interpolation=cv2.INTER_CUBIC)
            x = 20 + j * (width // 3) + (i * 3) % 25
            y = 80 + (i * 2 + 10 * j) % 30
            frame[y : y + scaled.shape[0], x : x + scaled.shape[1]] = scaled
        frames.append(frame)
    return frames, len(people)


def bench_camera(s: Settings) -> dict:
    """Frames per second the camera's work sustains on 640x480 frames of three faces:
    Recognizer.identify per frame with detection at 320 px (`facebot webcam`'s default
    --detect-size), with the current detector and the previous one (previous_detector),
    taking turns frame by frame (so background load hits both alike; three passes over the
    stream); and the reference on some of the same frames."""
    from facebot.recognition import Recognizer
    from facebot.recognition.detect import MTCNNDetector

    rng = np.random.default_rng(s.seed)
    recognizer = Recognizer()
    matcher = gallery_matcher(recognizer, 100, rng)
    detectors = {"current": MTCNNDetector(max_side=320), "previous": previous_detector(max_side=320)}
    frames, per_frame = camera_frames(s.camera_frames)
    for detector in detectors.values():  # warm-up: every pyramid shape once
        recognizer.detector = detector
        recognizer.identify(frames[0], matcher)
    streams: dict[str, list[float]] = {name: [] for name in detectors}
    found = {name: 0 for name in detectors}
    for repeat in range(3):
        log(f"camera: pass {repeat + 1}/3 over {len(frames)} frames, both detectors")
        seconds = {name: 0.0 for name in detectors}
        for i, frame in enumerate(frames):
            order = list(detectors) if i % 2 == 0 else list(reversed(detectors))
            for name in order:
                recognizer.detector = detectors[name]
                start = time.perf_counter()
                faces = recognizer.identify(frame, matcher)
                seconds[name] += time.perf_counter() - start
                if repeat == 0:
                    found[name] += len(faces)
        for name in detectors:
            streams[name].append(len(frames) / seconds[name])
    result: dict = {"frame_size": "640x480", "frames": len(frames), "faces_per_frame": per_frame, "detect_side": 320}
    for name in detectors:
        result[name] = {"fps": summarise(streams[name]), "faces_found": found[name]}
    result["speedup"] = result["current"]["fps"]["median"] / result["previous"]["fps"]["median"]
    reference = Reference(rng)
    some = frames[: max(5, len(frames) // 6)]
    log(f"camera: reference ({reference.name}), {len(some)} frames")
    reference.identify(some[0])
    start = time.perf_counter()
    found_reference = sum(len(reference.identify(frame)) for frame in some)
    result["reference"] = {"name": reference.name, "fps": len(some) / (time.perf_counter() - start),
                           "frames": len(some), "faces_found": found_reference}
    result["ratio"] = result["current"]["fps"]["median"] / result["reference"]["fps"]
    return result


def loop_nearest(labels: list[str], matrix: np.ndarray, query: np.ndarray) -> tuple[str, float]:
    """The straightforward search: one np.linalg.norm per enrolled sample, in Python."""
    best_label, best = None, float("inf")
    for label, row in zip(labels, matrix):
        distance = float(np.linalg.norm(query - row))
        if distance < best:
            best_label, best = label, distance
    return best_label, best


def bench_search(s: Settings) -> dict:
    """One query against N enrolled samples: Matcher.nearest (one matrix product) vs a Python loop."""
    from facebot.recognition import Matcher

    rng = np.random.default_rng(s.seed)
    result: dict = {}
    for size in s.search_sizes:
        log(f"search: {size:,} samples")
        labels = [f"p{i}" for i in range(size)]
        matrix = random_unit_vectors(size, rng)
        matcher = Matcher(labels, matrix)
        queries = iter(random_unit_vectors(s.search_repeats + s.loop_repeats + 4, rng))
        row: dict = {"matrix_ms": summarise(time_calls(lambda: matcher.nearest(next(queries)), s.search_repeats), 1000)}
        if size in s.loop_sizes:
            row["loop_ms"] = summarise(time_calls(lambda: loop_nearest(labels, matrix, next(queries)),
                                                  s.loop_repeats, warmup=1), 1000)
            row["speedup"] = row["loop_ms"]["median"] / row["matrix_ms"]["median"]
            query = next(queries)
            row["same_answer"] = matcher.nearest(query)[0].name == loop_nearest(labels, matrix, query)[0]
        else:
            row["loop_ms"] = None
            row["loop_skipped"] = "not timed in --quick mode (about 0.5 s per query)"
        result[str(size)] = row
    return result


def copy_samples(root: Path) -> list[tuple[str, Path]]:
    """Copy the 20 sample photos into `root`/PERSON/ and return (name, path) pairs to enroll."""
    items = []
    for person, number in all_samples():
        target = root / person / f"{number}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLES / person / f"{number}.jpg", target)
        items.append((f"Person {person}", target))
    return items


def enroll_seconds(recognizer, items: list[tuple[str, Path]], root: Path, prefill: int, bulk: bool) -> float:
    """Seconds to enroll `items` into a new gallery under `root` that already holds `prefill` people,
    with one enroll_many call (bulk) or one FaceService.enroll call, and so one write, per photo."""
    from facebot.service import FaceService
    from facebot.recognition import load_image
    from facebot.storage import Gallery

    gallery = Gallery(root)
    if prefill:
        vectors = random_unit_vectors(prefill, np.random.default_rng(prefill))
        gallery.add_samples([(f"Enrolled {i:06d}", v) for i, v in enumerate(vectors)], actor="bench")
    service = FaceService(gallery, recognizer)
    start = time.perf_counter()
    if bulk:
        report = service.enroll_many(items, force=True)
        assert report.enrolled == len(items), report.skipped
    else:
        for name, path in items:
            service.enroll(name, load_image(path), force=True)
    return time.perf_counter() - start


def bench_enrollment(s: Settings) -> dict:
    """Photos per second through FaceService.enroll_many (batched writes) vs enroll (one write each),
    into an empty gallery and into one that already holds s.enroll_prefill people."""
    from facebot.recognition import Recognizer

    recognizer = Recognizer()
    recognizer.warm_up()
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="facebot-bench-") as tmp:
        items = copy_samples(Path(tmp) / "photos")
        enroll_seconds(recognizer, items[:2], Path(tmp) / "warm-up", 0, bulk=True)
        for prefill in (0, s.enroll_prefill):
            runs = {"bulk": [], "one_by_one": []}
            for repeat in range(s.enroll_repeats):
                log(f"enrollment: gallery of {prefill} people, repeat {repeat + 1}/{s.enroll_repeats}")
                for mode in (("bulk", "one_by_one") if repeat % 2 == 0 else ("one_by_one", "bulk")):
                    root = Path(tmp) / f"{mode}-{prefill}-{repeat}"
                    runs[mode].append(enroll_seconds(recognizer, items, root, prefill, bulk=mode == "bulk"))
            rates = {mode: summarise([len(items) / t for t in times]) for mode, times in runs.items()}
            result[f"gallery_{prefill}"] = {"people_before": prefill, "bulk_photos_per_s": rates["bulk"],
                                            "one_by_one_photos_per_s": rates["one_by_one"],
                                            "speedup": rates["bulk"]["median"] / rates["one_by_one"]["median"]}
    result["photos"] = len(items)
    return result


def bench_gallery_load(s: Settings) -> dict:
    """Write s.gallery_people people in one transaction; time a fresh Gallery's embeddings() and report the file size."""
    from facebot.storage import Gallery

    rng = np.random.default_rng(s.seed)
    vectors = random_unit_vectors(s.gallery_people, rng)
    samples = [(f"Person {i:06d}", vector) for i, vector in enumerate(vectors)]
    with tempfile.TemporaryDirectory(prefix="facebot-bench-") as tmp:
        log(f"gallery: writing {len(samples):,} people")
        start = time.perf_counter()
        Gallery(tmp).add_samples(samples, actor="bench")
        write_s = time.perf_counter() - start
        size = (Path(tmp) / "gallery.json").stat().st_size

        def load():
            labels, matrix = Gallery(tmp).embeddings()
            assert matrix.shape == (len(samples), 512)

        log("gallery: loading")
        times = time_calls(load, s.gallery_load_repeats, warmup=1)
    return {"people": len(samples), "write_s": write_s, "load_ms": summarise(times, 1000),
            "file_bytes": size, "bytes_per_sample": size / len(samples)}


def bot_photos(count: int) -> list[bytes]:
    """`count` 640x480 JPEGs with one face each, cycling through the samples."""
    from facebot.recognition.images import encode_jpeg

    photos = [encode_jpeg(one_face_frame(p, n)[0]) for p, n in all_samples()]
    return [photos[i % len(photos)] for i in range(count)]


async def wait_for_replies(server, users: list[int], each: int, timeout: float = 300.0) -> float:
    """Wait until every user has `each` replies; return the monotonic time the last one was sent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = [server.messages(u) for u in users]
        if all(len(r) >= each for r in replies):
            return max(c.at for r in replies for c in r[:each])
        await asyncio.sleep(0.01)
    raise TimeoutError(f"not every user got {each} replies within {timeout:.0f} s")


def bench_bot(s: Settings, users_count: int = 8, photos_each: int = 3) -> dict:
    """Photos answered per second with 8 users each sending 3 photos at once, through the real
    PTB Application polling the fake Bot API server (as tests/test_bot.py runs it); rounds
    take turns between the current detector and the previous one (previous_detector)."""
    from facebot.config import BotConfig
    from facebot.service import FaceService
    from facebot.bot.telegram_bot import build_application
    from facebot.recognition import Recognizer, load_image
    from facebot.storage import Gallery
    from tests.fake_telegram import FakeTelegram, polling

    users = list(range(100, 100 + users_count))
    recognizer = Recognizer()
    detectors = {"current": recognizer.detector, "previous": previous_detector()}
    for detector in detectors.values():
        recognizer.detector = detector
        recognizer.warm_up()
    per_round = users_count * photos_each
    photos = bot_photos(per_round)

    async def scenario(server) -> dict[str, list[float]]:
        seconds: dict[str, list[float]] = {name: [] for name in detectors}
        answered = 0
        for name, detector in detectors.items():  # warm-up: one photo per user and detector, untimed
            recognizer.detector = detector
            for user in users:
                server.push_photo(user, user, photos[0])
            answered += 1
            await wait_for_replies(server, users, answered)
        for round_number in range(s.bot_rounds):
            for name, detector in detectors.items():  # rounds take turns: background load hits both alike
                log(f"bot: round {round_number + 1}/{s.bot_rounds}, {name} detector")
                recognizer.detector = detector
                start = time.monotonic()  # Call.at is monotonic too
                for i in range(photos_each):
                    for j, user in enumerate(users):
                        server.push_photo(user, user, photos[i * users_count + j])
                answered += photos_each
                seconds[name].append(await wait_for_replies(server, users, answered) - start)
        recognizer.detector = detectors["current"]
        return seconds

    async def main(data_dir: str) -> dict[str, list[float]]:
        server = FakeTelegram().start()
        service = FaceService(Gallery(data_dir), recognizer)
        for person in PEOPLE[:4]:
            service.enroll(f"Person {person}", load_image(SAMPLES / person / "1.jpg"), actor="bench")
        config = BotConfig(token=server.token, api_url=server.url, data_dir=data_dir,
                           hr_ids=frozenset({1}), user_ids=frozenset(users))
        try:
            async with polling(build_application(config, service)):
                return await scenario(server)
        finally:
            server.stop()

    with tempfile.TemporaryDirectory(prefix="facebot-bench-") as tmp:
        seconds = asyncio.run(main(tmp))
    previous = seconds["previous"]
    seconds = seconds["current"]
    return {"users": users_count, "photos_per_user": photos_each, "photos_per_round": per_round,
            "photo_size": "640x480", "round_s": summarise(seconds),
            "photos_per_s": summarise([per_round / t for t in seconds]),
            "previous_detector": {"round_s": summarise(previous), "photos_per_s": summarise([per_round / t for t in previous])}}


def read_memory(pid: int) -> dict:
    """VmHWM (peak) and VmRSS (now) of a process, in MiB, from /proc/PID/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) / 1024  # kB -> MiB
    return values


def bench_bot_memory(s: Settings, timeout: float = 180.0) -> dict:
    """Start `facebot bot` against the fake server; read its memory once it polls and again after one photo."""
    from tests.fake_telegram import FakeTelegram

    class PollingWatcher(FakeTelegram):
        """The fake server, noting when the bot first asks for updates."""

        def __init__(self):
            super().__init__()
            self.polled = threading.Event()

        def _get_updates(self, params):
            self.polled.set()
            return super()._get_updates(params)

    server = PollingWatcher().start()
    facebot = Path(sys.executable).parent / "facebot"
    command = [str(facebot)] if facebot.exists() else [sys.executable, "-m", "bot.cli"]
    with tempfile.TemporaryDirectory(prefix="facebot-bench-") as tmp:
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": server.token, "TELEGRAM_API_URL": server.url,
               "FACEBOT_DATA_DIR": str(Path(tmp) / "data"), "FACEBOT_HR_IDS": "1", "PYTHONPATH": str(REPO)}
        stderr = open(Path(tmp) / "stderr.txt", "w+")
        log("bot memory: starting `facebot bot`")
        start = time.perf_counter()
        process = subprocess.Popen(command + ["bot"], cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            while not server.polled.wait(0.1):
                if process.poll() is not None or time.perf_counter() - start > timeout:
                    stderr.seek(0)
                    raise RuntimeError(f"`facebot bot` did not start polling: {stderr.read()[-2000:]}")
            startup_s = time.perf_counter() - start
            after_start = read_memory(process.pid)
            server.push_photo(1, 1, bot_photos(1)[0])
            asyncio.run(wait_for_replies(server, [1], 1, timeout=60))
            after_photo = read_memory(process.pid)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                exit_code = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                exit_code = process.wait()
            stderr.close()
            server.stop()
    return {"startup_s": startup_s, "after_startup_mib": after_start, "after_one_photo_mib": after_photo,
            "exit_code": exit_code}


# -- machine, targets, table ----------------------------------------------------------------

def machine_info() -> dict:
    """CPU model and cores, Python, TensorFlow, load average and date."""
    import tensorflow as tf

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "tensorflow": tf.__version__, "numpy": np.__version__, "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def cpu_snapshot() -> tuple[float, float, float]:
    """(busy, total) CPU seconds of the whole machine from /proc/stat, and this process's own
    CPU seconds (children it waited for included)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return (sum(ticks[:8]) - idle) / hz, sum(ticks[:8]) / hz, own.user + own.system + own.children_user + own.children_system


def other_load(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """Share of the machine's CPU time used by other processes between two cpu_snapshot()s:
    0 on a quiet machine, 0.5 when something else kept one of two cores busy throughout."""
    busy, total, own = (a - b for a, b in zip(after, before))
    return max(0.0, busy - own) / total if total > 0 else 0.0


def targets(r: dict) -> list[dict]:
    """The issue's targets, each with what was measured and whether it is met (None: not measured)."""
    def get(*keys):
        value = r
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    default_backend = os.environ.get("FACEBOT_EMBEDDER", DEFAULT_BACKEND)
    default_faces, package_faces = get("detection", "mtcnn_default", "faces_found"), get("detection", "mtcnn_package", "faces_found")
    rows = [
        ("embedding, batch 1, default backend", get("embedding", default_backend, "batch1_ms_per_face", "median"), "<=", 20, "ms/face"),
        ("detection 640x480, default MTCNN", get("detection", "mtcnn_default", "ms_per_frame", "median"), "<=", 60, "ms/frame"),
        ("default finds >= faces than package", default_faces, ">=", package_faces, "faces"),
        ("identify 1280x960, one face", get("identify", "one_face", "ms", "median"), "<=", 150, "ms"),
        ("search 100,000 samples", get("search", "100000", "matrix_ms", "median"), "<=", 20, "ms"),
        ("bot, 8 concurrent users", get("bot", "photos_per_s", "median"), ">=", 5, "photos/s"),
        ("real photos, slowest ratio to face_recognition", get("photos", "min_ratio"), ">=", 10, "x"),
        ("bot no slower than the previous detector", get("bot", "photos_per_s", "median"), ">=",
         get("bot", "previous_detector", "photos_per_s", "median"), "photos/s"),
        ("camera no slower than the previous detector", get("camera", "current", "fps", "median"), ">=",
         get("camera", "previous", "fps", "median"), "frames/s"),
        ("`facebot bot` RSS (peak after start-up)", get("bot_memory", "after_startup_mib", "VmHWM"), "<=", 1536, "MiB"),
    ]
    out = []
    for name, measured, op, limit, unit in rows:
        met = None if measured is None or limit is None else (measured <= limit if op == "<=" else measured >= limit)
        out.append({"target": name, "measured": measured, "op": op, "limit": limit, "unit": unit, "met": met})
    return out


def fmt(stats: dict | None, digits: int = 1) -> str:
    """'median [min-max]' of a summarise() dict."""
    if not stats:
        return "-"
    return f"{stats['median']:.{digits}f} [{stats['min']:.{digits}f}-{stats['max']:.{digits}f}]"


def table_rows(r: dict) -> list[tuple[str, str, str]]:
    """(measurement, median [min-max], note) for every result present."""
    rows = []
    if e := r.get("embedding"):
        for backend in ("tf", "tflite", "tflite-int8"):
            rows.append((f"embed {backend}, batch 1 (ms/face)", fmt(e[backend]["batch1_ms_per_face"]), ""))
            rows.append((f"embed {backend}, batch 16 (ms/face)", fmt(e[backend]["batch16_ms_per_face"]), ""))
        rows.append(("embed speed-up tflite-int8 vs tf", f"{e['int8_speedup_batch1']:.2f}x b1, {e['int8_speedup_batch16']:.2f}x b16", ""))
        rows.append(("embed speed-up tflite vs tf", f"{e['speedup_batch1']:.2f}x b1, {e['speedup_batch16']:.2f}x b16",
                     f"float max |diff| {e['max_abs_diff']:.1e}, int8 max distance {e['quantized_max_distance']:.3f}"))
    if d := r.get("detection"):
        for name in ("mtcnn_package", "mtcnn_default", "mtcnn_320", "haar"):
            rows.append((f"detect {name} 640x480 (ms/frame)", fmt(d[name]["ms_per_frame"]),
                         f"{d[name]['faces_found']}/{d['faces_present']} faces, {d[name]['false_positives']} false; one-face {d[name]['ms_one_face_frame']['median']:.0f}"
                         + (f", group {d[name]['ms_group_frame']['median']:.0f} ms" if d[name]["ms_group_frame"] else " ms")))
        rows.append(("detect speed-up default vs package", f"{d['speedup_default_vs_package']:.2f}x", f"{d['frames']} frames"))
    if i := r.get("identify"):
        for name in ("one_face", "six_faces"):
            rows.append((f"identify 1280x960 {name.replace('_', ' ')} (ms)", fmt(i[name]["ms"]),
                         f"{i[name]['faces_found']} found; gallery {i['gallery_people']}"))
    if s := r.get("search"):
        for size, row in s.items():
            rows.append((f"search {int(size):,} matrix (ms)", fmt(row["matrix_ms"], 3), ""))
            if row["loop_ms"]:
                rows.append((f"search {int(size):,} python loop (ms)", fmt(row["loop_ms"], 3),
                             f"{row['speedup']:.0f}x slower; same answer: {row['same_answer']}"))
            else:
                rows.append((f"search {int(size):,} python loop (ms)", "-", row["loop_skipped"]))
    if en := r.get("enrollment"):
        for key, row in en.items():
            if key.startswith("gallery_"):
                where = f"gallery of {row['people_before']:,}"
                rows.append((f"enroll_many, {where} (photos/s)", fmt(row["bulk_photos_per_s"], 2),
                             f"{en['photos']} photos, force"))
                rows.append((f"enroll 1 by 1, {where} (photos/s)", fmt(row["one_by_one_photos_per_s"], 2),
                             f"bulk {row['speedup']:.2f}x"))
    if g := r.get("gallery"):
        rows.append((f"gallery load, {g['people']:,} people (ms)", fmt(g["load_ms"], 0),
                     f"gallery.json {g['file_bytes'] / 1e6:.1f} MB; written in {g['write_s']:.1f} s"))
    if p := r.get("photos"):
        for name, row in p["photos"].items():
            fb, ref = row["facebot"], row["reference"]
            rows.append((f"photo {name} (ms)", fmt(fb["ms"], 0),
                         f"{fb['faces_found']}/{row['faces']} faces ({fb.get('boxes', '?')} boxes); reference {ref['ms']['median']:.0f} ms, "
                         f"{ref['faces_found']}/{row['faces']} ({ref.get('boxes', '?')}): {row['ratio']:.1f}x"))
        rows.append(("photo speed-up vs reference", f"{p['min_ratio']:.1f}x min", f"geometric mean {p['geomean_ratio']:.1f}x; {p['reference']}"))
    if c := r.get("camera"):
        rows.append(("camera 640x480, 3 faces (frames/s)", fmt(c["current"]["fps"], 1),
                     f"{c['current']['faces_found']}/{c['frames'] * c['faces_per_frame']} faces; previous detector "
                     f"{c['previous']['fps']['median']:.1f} fps ({c['speedup']:.2f}x); reference {c['reference']['fps']:.1f} fps ({c['ratio']:.1f}x)"))
    if b := r.get("bot"):
        rows.append(("bot, 8 users x 3 photos (photos/s)", fmt(b["photos_per_s"], 2), f"round {b['round_s']['median']:.1f} s"
                     + (f"; previous detector {b['previous_detector']['photos_per_s']['median']:.2f}" if "previous_detector" in b else "")))
    if m := r.get("bot_memory"):
        rows.append(("`facebot bot` after start-up (MiB)", f"RSS {m['after_startup_mib']['VmRSS']:.0f}, peak {m['after_startup_mib']['VmHWM']:.0f}",
                     f"start-up {m['startup_s']:.1f} s"))
        rows.append(("`facebot bot` after one photo (MiB)", f"RSS {m['after_one_photo_mib']['VmRSS']:.0f}, peak {m['after_one_photo_mib']['VmHWM']:.0f}", ""))
    return rows


def render(results: dict) -> str:
    """The machine, the measurements and the targets as plain text."""
    m = results["machine"]
    lines = [f"facebot benchmarks{' (--quick)' if results['quick'] else ''}, {m['date']}",
             f"{m['cpu']}, {m['cores']} cores; Python {m['python']}, TensorFlow {m['tensorflow']}; "
             f"{results['elapsed_s']:.0f} s",
             f"load average {m['load_average_at_start']} at start, {m['load_average_at_end']} at end; "
             f"other processes used {m['cpu_share_used_by_other_processes']:.0%} of the CPU during the run", "",
             f"{'measurement':<44} {'median [min-max]':<26} note", "-" * 110]
    lines += [f"{name:<44} {value:<26} {note}" for name, value, note in table_rows(results)]
    lines += ["", f"{'target (issue 6)':<44} {'measured':<14} {'target':<18} met", "-" * 84]
    for t in results["targets"]:
        measured = "-" if t["measured"] is None else f"{t['measured']:.1f}" if isinstance(t["measured"], float) else str(t["measured"])
        verdict = {True: "yes", False: "NO", None: "not measured"}[t["met"]]
        limit = f"{t['limit']:.1f}" if isinstance(t["limit"], float) else t["limit"]
        target = f"{t['op']} {limit} {t['unit']}" if t["limit"] is not None else "-"
        lines.append(f"{t['target']:<44} {measured:<14} {target:<18} {verdict}")
    if results.get("errors"):
        lines += ["", "errors:"] + [f"  {k}: {v}" for k, v in results["errors"].items()]
    return "\n".join(lines)


MEASUREMENTS: dict[str, Callable[[Settings], dict]] = {
    "embedding": bench_embedding,
    "detection": bench_detection,
    "identify": bench_identify,
    "search": bench_search,
    "enrollment": bench_enrollment,
    "gallery": bench_gallery_load,
    "photos": bench_photos,
    "camera": bench_camera,
    "bot": bench_bot,
    "bot_memory": bench_bot_memory,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames and repeats (under 2 minutes)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "latest.json"), help="where to write the JSON")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(MEASUREMENTS)}")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(MEASUREMENTS)
    unknown = set(chosen) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"unknown measurement(s): {', '.join(sorted(unknown))}")

    import logging

    logging.basicConfig(level=logging.WARNING)
    started, cpu_before = time.perf_counter(), cpu_snapshot()
    results: dict = {"quick": settings.quick, "machine": machine_info(), "settings": settings.__dict__, "errors": {}}
    for name in chosen:
        t0 = time.perf_counter()
        try:
            results[name] = MEASUREMENTS[name](settings)
        except Exception as exc:  # one broken measurement should not lose the others
            log(f"{name} failed: {exc!r}")
            results["errors"][name] = repr(exc)
        log(f"{name}: {time.perf_counter() - t0:.1f} s")
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"]["cpu_share_used_by_other_processes"] = round(other_load(cpu_before, cpu_snapshot()), 3)
    results["elapsed_s"] = time.perf_counter() - started
    results["targets"] = targets(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(render(results))
    print(f"\nJSON written to {out}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
