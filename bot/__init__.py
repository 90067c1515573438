"""The product's faces: the `facebot` command line, the Telegram bot and the camera process."""
