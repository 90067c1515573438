"""The camera process: frame sources, the pure Watcher, the alert queue, `facebot webcam`."""
