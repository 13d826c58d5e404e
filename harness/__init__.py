"""The fixed harness: simulator backends, robot model, run supervisor, evaluation and results log.

The research agent edits only train.py; nothing in this package is theirs to change.
"""
