"""Networks and weights: FaceNet loading, Siamese definitions and training, trained weights."""
