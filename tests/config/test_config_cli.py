"""`haven config check FILE [--json]`: the handler directly, then the real command."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from cli import config_cmd
from cli.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(REPO, "config", "examples", "two-node.toml")

BROKEN = """
[cluster]
name = "broken"

[[network]]
name = "public"
subnet = "198.18.0.0/24"

[[server]]
name = "node1"
addresses = { public = "198.18.0.11", storage = "10.0.0.1" }

[node]
beat_interval = 500
max_restarts = 3

[[group]]
name = "web site"
servers = ["node1", "node9"]

[[group.resource]]
name = "vip1"
type = "vip"
"""

EXPECTED_ERRORS = [
    'error: server "node1" → addresses → storage: unknown network "storage" '
    '(known networks: "public")',
    'error: node → beat_interval: a duration needs a unit: write e.g. "500s" or "500ms", '
    "not the bare number 500",
    'error: group "web site" → servers: unknown server "node9"; did you mean "node1"?',
    'error: group "web site" → resource "vip1" → type: resource type "vip" is not available '
    "in this version",
]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="haven")
    config_cmd.register(p.add_subparsers(dest="command"))
    return p


def run(capsys, *argv: str) -> tuple[int, str]:
    args = parser().parse_args(list(argv))
    code = args.func(args)
    return code, capsys.readouterr().out


@pytest.fixture
def broken(tmp_path) -> str:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, encoding="utf-8")
    return str(path)


def test_check_valid_file(capsys) -> None:
    code, out = run(capsys, "config", "check", EXAMPLE)
    assert code == 0
    assert out.splitlines() == [f"{EXAMPLE}: valid"]


def test_check_broken_file_lists_every_error(capsys, broken: str) -> None:
    code, out = run(capsys, "config", "check", broken)
    assert code == 1
    assert out.splitlines() == [*EXPECTED_ERRORS, f"{broken}: invalid, 4 errors, 0 warnings"]


def test_check_json(capsys, broken: str) -> None:
    code, out = run(capsys, "config", "check", broken, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False and report["file"] == broken and report["warnings"] == []
    assert [e["path"] for e in report["errors"]] == [
        ["server", 0, "addresses", "storage"],
        ["node", "beat_interval"],
        ["group", 0, "servers", 1],
        ["group", 0, "resource", 0, "type"],
    ]
    assert report["errors"][2] == {
        "path": ["group", 0, "servers", 1],
        "place": 'group "web site" → servers',
        "message": 'unknown server "node9"; did you mean "node1"?',
    }
    code, out = run(capsys, "config", "check", EXAMPLE, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["errors"] == []
    assert report["warnings"] == []


@pytest.mark.parametrize(
    "content",
    [b"\x7fELF\x02\x01\x01\x00\x00\xff\xfe", b'[cluster]\nname = "\xc3\x28"\n', b"[cluster\n"],
)
def test_bad_input_is_an_error_not_a_traceback(capsys, tmp_path, content: bytes) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    code, out = run(capsys, "config", "check", str(path))
    assert code == 1
    assert out.splitlines()[0].startswith("error: ")


def test_missing_file_and_directory_are_user_errors(tmp_path) -> None:
    for target, message in [(tmp_path / "nope.toml", "no such file"), (tmp_path, "is a directory")]:
        args = parser().parse_args(["config", "check", str(target)])
        with pytest.raises(UserError, match=message):
            args.func(args)


def haven(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_haven_config_check_command(broken: str, tmp_path) -> None:
    out = haven("config", "check", broken)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    for line in EXPECTED_ERRORS:
        assert line in out.stdout.splitlines()
    out = haven("config", "check", broken, "--json")
    assert out.returncode == 1 and len(json.loads(out.stdout)["errors"]) == 4
    out = haven("config", "check", EXAMPLE)
    assert out.returncode == 0, out.stdout + out.stderr
    out = haven("config", "check", str(tmp_path / "missing.toml"))
    assert out.returncode == 2
    assert out.stderr.strip() == f"haven: no such file: {tmp_path / 'missing.toml'}"
    assert out.stdout == ""
