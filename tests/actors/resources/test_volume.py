"""The volume resource against real LVM metadata on a loop device.

This kernel has no device-mapper: no logical volume can be activated, so what is tested is
every answer short of that (see actors/resources/volume.py). Each test's LVM sees only its own
loop device, through an lvm.conf of its own passed as LVM_SYSTEM_DIR in ctx.env (the driver
must hand ctx.env to LVM for any of these tests to pass); the logical volume is created with
activation disabled, which is how LVM writes metadata without device-mapper.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from actors.resources.base import ResourceContext, ResourceError, Why
from actors.resources.volume import VolumeDriver, parse_lvs

TOOLS = ("losetup", "pvcreate", "vgcreate", "lvcreate", "vgchange", "lvchange", "lvs")
missing = [t for t in TOOLS if shutil.which(t) is None]
pytestmark = [
    pytest.mark.skipif(bool(missing), reason=f"missing tools: {missing} (apt-get install lvm2)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and LVM need root"),
    pytest.mark.skipif(not os.path.exists("/dev/loop-control"), reason="no loop device support"),
]

NO_ACTIVATION = "global{activation=0}"


@dataclass
class Lvm:
    device: str
    vg: str
    env: dict[str, str]


def lvm_conf(device: str, *extra: str) -> str:
    accept = f'[ "a|^{device}$|", "r|.*|" ]'
    return "\n".join(
        (
            f"devices {{ filter = {accept} global_filter = {accept} use_devicesfile = 0",
            "  obtain_device_list_from_udev = 0 }",
            "activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }",
            "backup { backup = 0 archive = 0 }",
            "global { use_lvmpolld = 0 }",
            *extra,
            "",
        )
    )


def sh(argv: list[str], env: dict[str, str] | None = None, check: bool = True):
    env = {**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1", **(env or {})}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check, env=env)


@pytest.fixture
def lvm(tmp_path) -> Iterator[Lvm]:
    """A VG named after this test run on a fresh loop device, seen by nobody else's LVM."""
    image = tmp_path / "pv.img"
    with open(image, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    device = sh(["losetup", "--find", "--show", str(image)]).stdout.strip()
    system_dir = tmp_path / "lvm"
    system_dir.mkdir()
    (system_dir / "lvm.conf").write_text(lvm_conf(device))
    found = Lvm(
        device, f"hvt{os.getpid()}_{tmp_path.name[-8:]}", {"LVM_SYSTEM_DIR": str(system_dir)}
    )
    found.vg = "".join(c if c.isalnum() or c in "_.-+" else "_" for c in found.vg)
    try:
        sh(["pvcreate", "-q", device], found.env)
        sh(["vgcreate", "-q", found.vg, device], found.env)
        yield found
    finally:
        sh(["vgremove", "-q", "-ff", "--config", NO_ACTIVATION, found.vg], found.env, check=False)
        sh(["pvremove", "-q", "-ff", device], found.env, check=False)
        sh(["losetup", "-d", device], check=False)


def add_lv(lvm: Lvm, name: str = "lv1") -> None:
    argv = ["lvcreate", "-q", "--config", NO_ACTIVATION, "-an", "-Zn", "-n", name, "-L", "8M"]
    sh([*argv, lvm.vg], lvm.env)


def driver(tmp_path, lvm: Lvm, vg: str | None = None, lv: str | None = None, env=None):
    ctx = ResourceContext(
        server="s1",
        group="g1",
        resource="vol1",
        params={"volume_group": vg or lvm.vg, "logical_volume": lv},
        priority=1,
        state_dir=str(tmp_path),
        config_dir=str(tmp_path),
        env=env if env is not None else lvm.env,
    )
    return VolumeDriver(ctx)


def test_activation_fails_naming_the_volume_group_and_lvms_reason(tmp_path, lvm):
    add_lv(lvm)
    d = driver(tmp_path, lvm)
    with pytest.raises(ResourceError) as failed:
        asyncio.run(d.start(Why()))
    message = str(failed.value)
    assert message.startswith(f"cannot activate volume group {lvm.vg}: vgchange -a y {lvm.vg}")
    assert "device-mapper" in message  # LVM's own explanation, not only its last line
    assert not asyncio.run(d.active())
    assert d.details() == {"volume_group": lvm.vg, "logical_volume": None}


def test_logical_volume_activation_uses_lvchange_on_vg_slash_lv(tmp_path, lvm):
    add_lv(lvm)
    add_lv(lvm, "lv2")
    d = driver(tmp_path, lvm, lv="lv2")
    with pytest.raises(ResourceError) as failed:
        asyncio.run(d.start(Why()))
    assert str(failed.value).startswith(
        f"cannot activate logical volume {lvm.vg}/lv2: lvchange -a y {lvm.vg}/lv2"
    )
    assert not asyncio.run(d.active())


def test_unknown_volume_group_is_a_clear_error(tmp_path, lvm):
    d = driver(tmp_path, lvm, vg="nosuchvg")
    with pytest.raises(ResourceError, match='Volume group "nosuchvg" not found'):
        asyncio.run(d.start(Why()))
    with pytest.raises(ResourceError, match="cannot deactivate volume group nosuchvg"):
        asyncio.run(d.stop(Why()))
    assert not asyncio.run(d.active())


def test_unknown_logical_volume_is_a_clear_error(tmp_path, lvm):
    add_lv(lvm)
    d = driver(tmp_path, lvm, lv="nolv")
    with pytest.raises(ResourceError, match=f'Failed to find logical volume "{lvm.vg}/nolv"'):
        asyncio.run(d.start(Why()))
    assert not asyncio.run(d.active())


def test_a_volume_group_without_volumes_does_not_count_as_started(tmp_path, lvm):
    d = driver(tmp_path, lvm)
    with pytest.raises(ResourceError, match=f"volume group {lvm.vg} has no logical volumes"):
        asyncio.run(d.start(Why()))
    assert not asyncio.run(d.active())


def test_success_that_activated_nothing_fails_the_start(tmp_path, lvm):
    """With activation disabled in lvm.conf, vgchange answers 0 and activates nothing."""
    add_lv(lvm)
    disabled = tmp_path / "lvm-disabled"
    disabled.mkdir()
    (disabled / "lvm.conf").write_text(lvm_conf(lvm.device, NO_ACTIVATION))
    d = driver(tmp_path, lvm, env={"LVM_SYSTEM_DIR": str(disabled)})
    with pytest.raises(ResourceError, match="activated, but lv1 is not active"):
        asyncio.run(d.start(Why()))


def test_stop_of_inactive_volumes_succeeds(tmp_path, lvm):
    add_lv(lvm)
    for d in (driver(tmp_path, lvm), driver(tmp_path, lvm, lv="lv1")):
        asyncio.run(d.stop(Why()))
        asyncio.run(d.stop(Why()))
        assert not asyncio.run(d.active())


def test_lvs_report_of_an_active_volume_is_read_as_active():
    """Synthetic `lvs` output, standing in for an active volume this kernel cannot have."""
    output = """  WARNING: something LVM says on stderr
  LVM2_LV_NAME='data' LVM2_LV_ACTIVE_LOCALLY='active locally'
  Failure to communicate with kernel device-mapper driver.
  LVM2_LV_NAME='logs' LVM2_LV_ACTIVE_LOCALLY=''
"""
    assert parse_lvs(output) == {"data": True, "logs": False}
    assert parse_lvs('  Volume group "vg" not found') == {}
