"""`haven witness token|serve` as a person runs them: real processes, real HTTP; mistakes are
one-line errors, never a traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from harness import REPO

from actors.np import witness_protocol as wp
from actors.np.witness_client import WitnessClient
from config.clusterkey import generate_cluster_key, load_cluster_key

CONFIG = """
[cluster]
name = "witnessed"
key_file = "cluster.key"

[[network]]
name = "public"
subnet = "198.18.0.0/24"

[[server]]
name = "node1"
addresses = { public = "198.18.0.11" }
"""


def haven(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        **kw,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, result
    return lines[-1]


@pytest.fixture
def cluster(tmp_path) -> tuple[str, bytes]:
    config = tmp_path / "cluster.toml"
    config.write_text(CONFIG)
    generate_cluster_key(str(tmp_path / "cluster.key"))
    return str(config), wp.cluster_token(load_cluster_key(str(tmp_path / "cluster.key")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_token_prints_the_line_for_the_tokens_file(cluster) -> None:
    config, token = cluster
    out = haven("witness", "token", "--config", config)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(token.hex()) and "witnessed" in out.stdout
    assert wp.parse_tokens(out.stdout) == {wp.cluster_id(token): token}


def test_token_without_a_key_is_a_one_line_error(tmp_path) -> None:
    config = tmp_path / "cluster.toml"
    config.write_text(CONFIG)
    assert "cannot read the cluster key" in one_line_error(
        haven("witness", "token", "--config", str(config))
    )


def test_serve_refuses_bad_input_in_one_line(cluster, tmp_path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("not a token\n")
    tokens.chmod(0o600)
    assert "line 1: not a token" in one_line_error(
        haven("witness", "serve", "--tokens", str(tokens))
    )
    tokens.chmod(0o644)
    assert "chmod 600" in one_line_error(haven("witness", "serve", "--tokens", str(tokens)))
    assert "cannot read the tokens file" in one_line_error(
        haven("witness", "serve", "--tokens", str(tmp_path / "none"))
    )
    assert "ADDR:PORT" in one_line_error(
        haven("witness", "serve", "--tokens", str(tokens), "--listen", "nowhere")
    )


def test_serve_answers_and_stops_on_sigterm(cluster, tmp_path) -> None:
    config, token = cluster
    tokens = tmp_path / "tokens"
    tokens.write_text(haven("witness", "token", "--config", config).stdout)
    tokens.chmod(0o600)
    port = free_port()
    log = open(tmp_path / "witness.log", "w+")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "witness", "serve", "--tokens", str(tokens),
         "--listen", f"127.0.0.1:{port}", "--state", str(tmp_path / "state.json")],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while "listening on" not in (tmp_path / "witness.log").read_text():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        client = WitnessClient(f"http://127.0.0.1:{port}", token, "node1")
        assert asyncio.run(client.call("acquire", 10)).result == "granted"
        proc.send_signal(signal.SIGHUP)  # re-reads the tokens; goes on serving
        time.sleep(0.3)
        assert asyncio.run(client.call("probe", 10)).result == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        text = (tmp_path / "witness.log").read_text()
        assert "tokens re-read: 1 cluster(s)" in text and "stopped" in text
        assert "Traceback" not in text
        assert os.stat(tmp_path / "state.json").st_mode & 0o077 == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        log.close()
