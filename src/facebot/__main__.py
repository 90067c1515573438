"""`python -m facebot` is the `facebot` command."""
import sys

from facebot.cli.main import main

sys.exit(main())
