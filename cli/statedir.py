"""How every command finds its node: `--state-dir`, else `HAVEN_STATE_DIR`, else /var/lib/haven."""

from __future__ import annotations

import argparse
import os

DEFAULT_STATE_DIR = "/var/lib/haven"


def add_state_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        default=None,
        help=f"the node's state directory (default: $HAVEN_STATE_DIR or {DEFAULT_STATE_DIR})",
    )


def resolve_state_dir(value: str | None) -> str:
    return os.path.abspath(value or os.environ.get("HAVEN_STATE_DIR") or DEFAULT_STATE_DIR)
