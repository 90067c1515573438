"""The `facebot` command line: a thin face over the service."""
