"""Small line charts drawn with OpenCV and written as PNG: training curves and ROC curves.

OpenCV is already a dependency; a plotting library would be one more for two pictures.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]  # RGB
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _ticks(lo: float, hi: float, count: int = 5) -> np.ndarray:
    return np.linspace(lo, hi, count)


def line_chart(series: dict[str, tuple[list[float], list[float]]], title: str, xlabel: str, ylabel: str,
               size: tuple[int, int] = (640, 420), xlim: tuple[float, float] | None = None,
               ylim: tuple[float, float] | None = None, dashed_diagonal: bool = False,
               legend_at: str = "top") -> np.ndarray:
    """Draw named (x, y) series on shared axes, the legend in the top or bottom right
    corner; return an RGB uint8 image (height, width, 3)."""
    width, height = size
    left, right, top, bottom = 70, 20, 50, 55
    img = np.full((height, width, 3), 255, np.uint8)
    xs = np.concatenate([np.asarray(x, float) for x, _ in series.values()]) if series else np.zeros(1)
    ys = np.concatenate([np.asarray(y, float) for _, y in series.values()]) if series else np.zeros(1)
    x0, x1 = xlim or (float(np.nanmin(xs)), float(np.nanmax(xs)))
    y0, y1 = ylim or (float(np.nanmin(ys)), float(np.nanmax(ys)))
    if x1 <= x0:
        x1 = x0 + 1
    if y1 <= y0:
        y1 = y0 + 1
    if ylim is None:  # a little air above and below the data
        pad = 0.05 * (y1 - y0)
        y0, y1 = y0 - pad, y1 + pad

    def px(x: float, y: float) -> tuple[int, int]:
        return (int(round(left + (x - x0) / (x1 - x0) * (width - left - right))),
                int(round(height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom))))

    cv2.rectangle(img, px(x0, y1), px(x1, y0), (0, 0, 0), 1)
    for t in _ticks(x0, x1):
        p = px(t, y0)
        cv2.line(img, p, (p[0], p[1] + 4), (0, 0, 0), 1)
        cv2.putText(img, f"{t:.3g}", (p[0] - 12, p[1] + 18), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for t in _ticks(y0, y1):
        p = px(x0, t)
        cv2.line(img, (p[0] - 4, p[1]), p, (0, 0, 0), 1)
        cv2.putText(img, f"{t:.3g}", (8, p[1] + 4), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    if dashed_diagonal:
        for k in range(0, 40, 2):
            a, b = k / 40, (k + 1) / 40
            cv2.line(img, px(x0 + a * (x1 - x0), y0 + a * (y1 - y0)), px(x0 + b * (x1 - x0), y0 + b * (y1 - y0)),
                     (160, 160, 160), 1, cv2.LINE_AA)
    for k, (x, y) in enumerate(series.values()):
        colour = COLOURS[k % len(COLOURS)]
        points = np.asarray([px(a, b) for a, b in zip(x, y) if np.isfinite(a) and np.isfinite(b)], np.int32)
        if len(points) > 1:
            cv2.polylines(img, [points], False, colour, 2, cv2.LINE_AA)
        elif len(points) == 1:
            cv2.circle(img, tuple(points[0]), 3, colour, -1)
    # the legend goes on a white box drawn over the curves, so it stays readable
    first = top + 18 if legend_at == "top" else height - bottom - 10 - 18 * (len(series) - 1)
    if series:
        cv2.rectangle(img, (width - right - 198, first - 16), (width - right - 4, first + 18 * (len(series) - 1) + 8),
                      (255, 255, 255), -1)
    for k, name in enumerate(series):
        ly = first + 18 * k
        cv2.line(img, (width - right - 190, ly - 4), (width - right - 165, ly - 4), COLOURS[k % len(COLOURS)], 2)
        cv2.putText(img, name[:26], (width - right - 160, ly), FONT, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (left, 22), FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (left + (width - left - right) // 2 - 4 * len(xlabel), height - 12), FONT, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (8, top - 8), FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def write_png(rgb: np.ndarray, path: str | Path) -> Path:
    """Write an RGB image as PNG (creating the folder); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def training_curves(history: dict, title: str, path: str | Path) -> Path:
    """Loss and accuracy per epoch (training and validation) side by side in one PNG."""
    epochs = [e["epoch"] for e in history["epochs"]]
    get = lambda key: [e[key] for e in history["epochs"]]  # noqa: E731
    loss = line_chart({"train loss": (epochs, get("loss")), "validation loss": (epochs, get("val_loss"))},
                      f"{title}: loss", "epoch", "loss")
    acc = line_chart({"train accuracy": (epochs, get("accuracy")), "validation accuracy": (epochs, get("val_accuracy"))},
                     f"{title}: accuracy", "epoch", "accuracy", ylim=(0.0, 1.0), legend_at="bottom")
    return write_png(np.concatenate([loss, acc], axis=1), path)


def roc_chart(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], title: str, path: str | Path) -> Path:
    """ROC curves {name: (fpr, tpr, auc)} on one chart, the AUC in each legend entry."""
    series = {f"{name} AUC {auc:.3f}": (fpr, tpr) for name, (fpr, tpr, auc) in curves.items()}
    img = line_chart(series, title, "false-accept rate", "true-accept rate", size=(640, 520),
                     xlim=(0.0, 1.0), ylim=(0.0, 1.0), dashed_diagonal=True, legend_at="bottom")
    return write_png(img, path)
