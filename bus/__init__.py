"""The node's message bus: one envelope for every message, pub/sub through the node's proxy,
request/reply to services. Actors share only this package and `config/`."""
