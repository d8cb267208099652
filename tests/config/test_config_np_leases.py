"""The lease NP methods' own rules: a disk lease's area is aligned and its I/O deadline leaves
room in the lease; a witness URL is http://HOST[:PORT]."""

from __future__ import annotations

import pytest

DISK = '[[np]]\nname = "disk"\ntype = "disknp"\ndevice = "/dev/sdb2"\n'
WITNESS = '[[np]]\nname = "w"\ntype = "witness"\n'


def test_a_disk_lease_with_its_defaults(probe) -> None:
    np = probe.valid(DISK, typed=True).np[0]
    assert np.params == {"device": "/dev/sdb2", "offset": 0, "lease": 10.0, "io_timeout": 2.0}


def test_a_disk_lease_is_available(probe) -> None:
    from config import check_text

    cluster, issues = check_text(probe.base + DISK)
    assert cluster is not None, issues


def test_a_disk_lease_area_starts_at_a_multiple_of_4096(probe) -> None:
    e = probe.one_error(DISK + "offset = 512\n", typed=True)
    assert e.path == ("np", 0, "offset") and "multiple of 4096" in e.message


def test_a_disk_lease_io_deadline_is_at_most_a_quarter_of_the_lease(probe) -> None:
    e = probe.one_error(DISK + 'lease = "4s"\nio_timeout = "1500ms"\n', typed=True)
    assert e.path == ("np", 0, "io_timeout") and "a quarter of the lease (4s)" in e.message
    probe.valid(DISK + 'lease = "4s"\nio_timeout = "1s"\n', typed=True)


def test_a_witness_with_its_defaults(probe) -> None:
    np = probe.valid(WITNESS + 'url = "http://198.18.0.1:29005"\n', typed=True).np[0]
    assert np.params == {"url": "http://198.18.0.1:29005", "timeout": 3.0, "interval": 5.0}


@pytest.mark.parametrize(
    "url, message",
    [
        ("https://witness", "give an http:// URL"),
        ("witness.example:29005", "give an http:// URL"),
        ("http://:29005", "no host"),
        ("http://witness:99999", "not a URL"),
        ("http://witness/?x=1", "no query"),
    ],
)
def test_a_witness_url_is_http_host_and_port(probe, url: str, message: str) -> None:
    e = probe.one_error(WITNESS + f'url = "{url}"\n', typed=True)
    assert e.path == ("np", 0, "url") and message in e.message


def test_a_witness_url_may_name_a_host_an_ipv6_address_and_a_prefix(probe) -> None:
    for url in ("http://witness.example", "http://[2001:db8::1]:8080", "http://w/haven"):
        probe.valid(WITNESS + f'url = "{url}"\n', typed=True)
