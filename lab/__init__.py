"""The lab: the Siamese experiment's command line, evaluation and the demo. May use `models` directly."""
