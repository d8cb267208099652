"""How the lab names what it makes (pure: no root needed)."""

from __future__ import annotations

import os

import pytest

from config import load_config, parse_config
from lab import LabError, naming
from lab.plan import make_plan

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "config", "examples")


def test_short_names_keep_short_safe_names_and_number_the_rest() -> None:
    names = ["node1", "Node 2 with a long name", "s1", "rt", "router", "db", "averylongname"]
    shorts = naming.short_names(names)
    assert shorts == {
        "node1": "node1",
        "Node 2 with a long name": "s2",
        "s1": "s3",  # looks like a fallback name: gets one of its own, never a clash
        "rt": "s4",
        "router": "s5",
        "db": "db",
        "averylongname": "s7",
    }
    assert len(set(shorts.values())) == len(names)


def test_lab_id_follows_the_directory() -> None:
    assert naming.lab_id("/tmp/a") == naming.lab_id("/tmp/./a/")
    assert naming.lab_id("/tmp/a") != naming.lab_id("/tmp/b")
    assert len(naming.lab_id("/tmp/a")) == 4


def test_plan_of_the_three_node_example() -> None:
    cluster = load_config(os.path.join(EXAMPLES, "three-node.toml"))
    st = make_plan(cluster, "/run/haven-lab", "three-node.toml")
    prefix = naming.namespace_prefix(st.id)
    assert st.switch == prefix + "sw" and st.router.namespace == prefix + "rt"
    assert st.router.address == "198.18.0.1/24" and st.router.network == "public"
    assert [s.short for s in st.servers] == ["node1", "node2", "s3"]
    node3 = st.servers[2]
    assert node3.name == "node3 (standby)" and node3.namespace == prefix + "s3"
    assert node3.state_dir == "/run/haven-lab/s3/state"
    assert node3.addresses == {"public": "198.18.0.13/24", "interconnect": "198.19.0.13/24"}
    assert node3.interfaces == {"public": "eth0", "interconnect": "eth1"}
    for s in st.servers:
        assert all(len(p) <= naming.IFNAMSIZ for p in s.ports.values())


def config(router_network_first: str = "interconnect", address: str = "198.18.0.11") -> str:
    return f"""
[cluster]
name = "c"
[[network]]
name = "{router_network_first}"
subnet = "198.19.0.0/24"
[[network]]
name = "other"
subnet = "198.18.0.0/24"
[[server]]
name = "a"
addresses = {{ other = "{address}", {router_network_first} = "198.19.0.11" }}
"""


def test_without_a_public_network_the_router_is_on_the_first() -> None:
    st = make_plan(parse_config(config()), "/tmp/x", "c.toml")
    assert st.router.network == "interconnect" and st.router.address == "198.19.0.1/24"
    # the first host address of a non-router network is a server's like any other
    make_plan(parse_config(config(address="198.18.0.1")), "/tmp/x", "c.toml")


def test_a_server_on_the_router_address_is_refused() -> None:
    text = config().replace('interconnect = "198.19.0.11"', 'interconnect = "198.19.0.1"')
    with pytest.raises(LabError, match=r"198\.19\.0\.1, which the lab's router owns"):
        make_plan(parse_config(text), "/tmp/x", "c.toml")
