"""Where the lab serves `haven witness serve` (lab/plan.py, pure): in the router, when a witness
NP resource's URL names the router's address."""

from __future__ import annotations

import pytest
from lab_cluster import cluster_config

from config import parse_config
from lab.errors import LabError
from lab.plan import make_plan


def witness(url: str, name: str = "w") -> str:
    return f'\n[[np]]\nname = "{name}"\ntype = "witness"\nurl = "{url}"\n'


def plan(np: str):
    cluster = parse_config(cluster_config(2, np))
    return make_plan(cluster, "/tmp/hvlab-plan", "/tmp/cluster.toml")


def test_a_witness_at_the_router_address_is_served_by_the_router() -> None:
    assert plan(witness("http://198.18.0.1:29005")).router.witness == {"listen": "198.18.0.1:29005"}
    assert plan(witness("http://198.18.0.1")).router.witness == {"listen": "198.18.0.1:29005"}


def test_a_witness_elsewhere_is_not_the_labs() -> None:
    assert plan(witness("http://198.18.0.99:29005")).router.witness is None
    assert plan(witness("http://witness.example")).router.witness is None
    assert plan("").router.witness is None


def test_two_witness_ports_on_the_router_are_refused() -> None:
    with pytest.raises(LabError, match="several ports"):
        plan(witness("http://198.18.0.1:1000") + witness("http://198.18.0.1:2000", "w2"))
