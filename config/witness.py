"""The witness NP resource's URL, read the same way by validation, the `witness` actor and the
lab: `http://HOST[:PORT][/PREFIX]`, port 29005 by default (ours: the original has no witness
port in SPEC §11). Plain HTTP on purpose — every message is sealed with the cluster's witness
token (actors/np/witness_protocol.py), and nothing in them is secret."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

DEFAULT_PORT = 29005


class WitnessUrlError(ValueError):
    pass


def parse_url(url: str) -> tuple[str, int, str]:
    """(host, port, path prefix) of a witness URL; WitnessUrlError saying what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WitnessUrlError(f"not a URL: {exc}") from None
    if parts.scheme != "http":
        raise WitnessUrlError(
            "give an http:// URL, e.g. http://198.18.0.1:29005 (the messages are sealed with "
            "the cluster's token; TLS is not needed)"
        )
    if not parts.hostname:
        raise WitnessUrlError("no host in the URL")
    if parts.query or parts.fragment or parts.username:
        raise WitnessUrlError("a witness URL has no query, fragment or user")
    return parts.hostname, port or DEFAULT_PORT, parts.path.rstrip("/")


def host_port(host: str, port: int) -> str:
    """ "HOST:PORT" ("[v6]:PORT" for an IPv6 address), as `--listen` and Host: take it."""
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"
