"""facebot: one-shot face recognition for a company's collaborators.

The rooms: `recognition` (the pure pipeline), `models` (networks and weights), `storage`
(the gallery), `service` (every rule and audit entry), and the faces over it: `cli`, `bot`
(Telegram), `camera`; `lab` holds the Siamese experiment, evaluation and the demo.
"""
__version__ = "0.2.0"
