"""Heartbeats: one actor per heartbeat resource, each watching every peer on its path."""
