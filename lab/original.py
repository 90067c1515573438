"""The original project's published figures (2020), quoted beside ours.

N-way one-shot accuracy at 20, 10 and 4 ways. Its networks were trained and tested on the
same Georgia Tech people (pairs split at random), so these are seen-people figures.
"""
ORIGINAL_N_WAY: dict[str, tuple[float, float, float]] = {
    "siamese from scratch": (0.649, 0.759, 0.892),
    "facenet": (0.963, 0.987, 0.992),
}
ORIGINAL_WAYS = (20, 10, 4)
