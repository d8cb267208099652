"""Actors: one process per concern, each a small program with one job and one inbox."""
