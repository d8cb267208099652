"""The exec driver with real scripts, real processes and real timeouts (small ones)."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from actors.resources import exec_files
from actors.resources.base import (
    EVENT_FAILOVER,
    FACTOR_GROUPMOVE,
    FACTOR_GROUPSTOP,
    ResourceContext,
    ResourceError,
    Why,
)
from actors.resources.exec import ExecDriver, boot_id, start_time

REPO = Path(__file__).resolve().parents[3]


def make_ctx(
    tmp_path: Path, config_dir: Path | None = None, group="web", resource="httpd", **params
):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return ResourceContext(
        server="node1",
        group=group,
        resource=resource,
        params=params,
        priority=2,
        state_dir=str(state),
        config_dir=str(config_dir or tmp_path / "conf"),
        env={"HAVEN_EXTRA": "from the actor"},
    )


def folder(ctx: ResourceContext) -> Path:
    return Path(ctx.config_dir, "scripts", ctx.group, ctx.resource)


def write(path: Path, body: str, executable: bool = True, shebang: str = "#!/bin/sh\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(shebang + textwrap.dedent(body))
    path.chmod(0o755 if executable else 0o644)
    return path


def read_env(path: Path) -> dict[str, str]:
    """What `env -0` wrote: values may hold anything but NUL."""
    items = path.read_bytes().decode().split("\0")
    return dict(item.split("=", 1) for item in items if item)


def ended(pid: int) -> bool:
    """Gone, or a zombie waiting for a parent that is not us (init here does not reap)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return True
    return data[data.rindex(b")") + 2 :].split()[0] in (b"Z", b"X")


@pytest.fixture
def exec_driver():
    """ExecDriver(ctx), and whatever a failed test leaves running is killed (and reaped)."""
    made: list[ExecDriver] = []

    def make(ctx: ResourceContext) -> ExecDriver:
        made.append(ExecDriver(ctx))
        return made[-1]

    yield make
    for driver in made:
        pid = driver.details().get("pid")
        if pid:
            os.killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + 2
            while driver.details() and time.monotonic() < deadline:  # details() reaps
                time.sleep(0.01)


async def until(check, limit: float = 3.0) -> bool:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


# --- synchronous scripts ---------------------------------------------------------------------


def test_sync_start_and_stop_run_the_scripts_and_track_the_resource(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path)
    write(folder(ctx) / "start.sh", "echo started >> trail\n")
    write(folder(ctx) / "stop.sh", "echo stopped >> trail\n")
    driver = exec_driver(ctx)

    async def main():
        assert not await driver.active()
        await driver.start(Why())
        assert await driver.active()
        assert driver.saved() == {"started": True}
        assert driver.details() == {}
        again = exec_driver(ctx)  # an actor restart keeps the flag
        again.restore(driver.saved())
        assert await again.active()
        await again.stop(Why(factor=FACTOR_GROUPSTOP))
        assert not await again.active()
        assert again.saved() == {}

    asyncio.run(main())
    assert (folder(ctx) / "trail").read_text() == "started\nstopped\n"


def test_sync_start_failure_names_exit_code_last_line_and_log(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path)
    write(folder(ctx) / "start.sh", 'echo "checking"\necho "port 80 is busy" >&2\nexit 3\n')
    driver = exec_driver(ctx)
    log = os.path.join(ctx.state_dir, "exec.log")
    with pytest.raises(ResourceError) as err:
        asyncio.run(driver.start(Why()))
    assert str(err.value) == (
        f"start script of exec resource httpd failed (exit 3): port 80 is busy; log: {log}"
    )
    assert not asyncio.run(driver.active())
    assert Path(log).read_text() == "checking\nport 80 is busy\n"


def test_sync_start_timeout_ends_script_and_its_children_at_the_deadline_48(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path, start_timeout=0.5)
    write(folder(ctx) / "start.sh", "sleep 60 &\necho $! > child.pid\nsleep 60\n")
    driver = exec_driver(ctx)
    began = time.monotonic()
    with pytest.raises(ResourceError, match="did not finish within its timeout"):
        asyncio.run(driver.start(Why()))
    assert 0.5 <= time.monotonic() - began < 1.2
    child = int((folder(ctx) / "child.pid").read_text())
    assert asyncio.run(until(lambda: ended(child), 0.3))  # SIGKILLed at the deadline: dying
    assert not asyncio.run(driver.active())


def test_scripts_get_the_clp_environment(tmp_path, monkeypatch, exec_driver):
    monkeypatch.setenv("CLP_PID", "4242")  # stale in the actor's environment: never passed on
    ctx = make_ctx(tmp_path)
    write(folder(ctx) / "start.sh", "env -0 > start.env\n")
    write(folder(ctx) / "stop.sh", "env -0 > stop.env\n")
    driver = exec_driver(ctx)

    async def main():
        await driver.start(Why(event=EVENT_FAILOVER, home=False, disk_ok=False))
        await driver.stop(Why(factor=FACTOR_GROUPMOVE))

    asyncio.run(main())
    common = {
        "CLP_GROUPNAME": "web",
        "CLP_RESOURCENAME": "httpd",
        "CLP_PRIORITY": "2",
        "CLP_PATH": str(folder(ctx)),
        "HAVEN_SERVER": "node1",
        "HAVEN_EXTRA": "from the actor",
        "PATH": os.environ["PATH"],
    }
    start = read_env(folder(ctx) / "start.env")
    assert (
        start.items()
        >= {
            **common,
            "CLP_EVENT": "FAILOVER",
            "CLP_SERVER": "OTHER",
            "CLP_DISK": "FAILURE",
            "CLP_FACTOR": "",
        }.items()
    )
    stop = read_env(folder(ctx) / "stop.env")
    assert (
        stop.items()
        >= {
            **common,
            "CLP_EVENT": "START",
            "CLP_SERVER": "HOME",
            "CLP_DISK": "SUCCESS",
            "CLP_FACTOR": "GROUPMOVE",
        }.items()
    )
    assert "CLP_PID" not in start and "CLP_PID" not in stop  # nothing asynchronous runs


def test_non_executable_script_runs_through_bin_sh_executable_one_directly(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path)
    write(folder(ctx) / "start.sh", "echo $0 > ran_by\n", executable=False, shebang="")
    stop = "import os; open('stopped_by', 'w').write(os.environ['CLP_FACTOR'])\n"
    write(folder(ctx) / "stop.sh", stop, shebang=f"#!{sys.executable}\n")  # not sh syntax
    driver = exec_driver(ctx)

    async def main():
        await driver.start(Why())
        await driver.stop(Why(factor=FACTOR_GROUPSTOP))

    asyncio.run(main())
    assert (folder(ctx) / "ran_by").read_text().strip() == str(folder(ctx) / "start.sh")
    assert (folder(ctx) / "stopped_by").read_text() == "GROUPSTOP"


def test_missing_scripts(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path)
    with pytest.raises(ResourceError, match="start script of exec resource httpd not found"):
        asyncio.run(exec_driver(ctx).start(Why()))
    write(folder(ctx) / "start.sh", "true\n")
    driver = exec_driver(ctx)  # the default stop.sh may be absent: nothing to run

    async def main():
        await driver.start(Why())
        await driver.stop(Why())
        assert not await driver.active()

    asyncio.run(main())
    named = exec_driver(make_ctx(tmp_path, stop="/nonexistent/stop it.sh"))
    with pytest.raises(ResourceError, match="stop script .* not found: /nonexistent/stop it.sh"):
        asyncio.run(named.stop(Why()))


def test_others_run_the_scripts_as_other_only_when_configured(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path, start_on_others=True, stop_on_others=True, start_sync=False)
    write(folder(ctx) / "start.sh", 'echo "start $CLP_SERVER $CLP_EVENT" >> others\n')
    write(folder(ctx) / "stop.sh", 'echo "stop $CLP_SERVER $CLP_FACTOR" >> others\n')
    asyncio.run(exec_driver(ctx).on_others("start", Why(event="FAILOVER")))
    asyncio.run(exec_driver(ctx).on_others("stop", Why(factor="GROUPMOVE")))
    plain = exec_driver(make_ctx(tmp_path, start_on_others=False, stop_on_others=False))
    asyncio.run(plain.on_others("start", Why()))
    asyncio.run(plain.on_others("stop", Why()))
    asyncio.run(exec_driver(ctx).standby())  # node start: nothing for an exec
    assert (folder(ctx) / "others").read_text() == "start OTHER FAILOVER\nstop OTHER GROUPMOVE\n"
    write(folder(ctx) / "start.sh", "exit 7\n")
    with pytest.raises(ResourceError, match=r"failed \(exit 7\)"):
        asyncio.run(exec_driver(ctx).on_others("start", Why()))


# --- asynchronous start ----------------------------------------------------------------------

ASYNC_START = """\
echo $$ > started.pid
sleep 60 &
echo $! > child.pid
wait
"""


def test_stop_script_gets_start_pid_clp_pid_18(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path, start_sync=False)
    write(folder(ctx) / "start.sh", ASYNC_START)
    write(folder(ctx) / "stop.sh", 'echo "$CLP_PID" > stop.pid\n')
    driver = exec_driver(ctx)

    async def main():
        await driver.start(Why())
        pid = driver.details()["pid"]
        assert await driver.active()
        assert driver.saved() == {"pid": pid, "start_time": start_time(pid), "boot_id": boot_id()}
        await driver.start(Why())  # a second start while it runs starts nothing more
        assert driver.details() == {"pid": pid}
        began = time.monotonic()
        await driver.stop(Why(factor=FACTOR_GROUPSTOP))
        assert time.monotonic() - began < 1.0  # sh and sleep end at SIGTERM: no grace needed
        assert not await driver.active()
        assert driver.details() == {} and driver.saved() == {}
        return pid

    pid = asyncio.run(main())
    assert int((folder(ctx) / "started.pid").read_text()) == pid
    assert int((folder(ctx) / "stop.pid").read_text()) == pid
    assert not Path(f"/proc/{pid}").exists()  # our child: reaped, not a zombie
    assert ended(int((folder(ctx) / "child.pid").read_text()))  # its group went with it


def test_async_process_that_dies_is_inactive_and_reaped_at_once(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path, start_sync=False)
    write(folder(ctx) / "start.sh", "sleep 0.3\nexit 5\n")
    driver = exec_driver(ctx)

    async def main():
        await driver.start(Why())
        pid = driver.details()["pid"]
        assert await driver.active()
        # reaped by the pidfd watcher, without anyone asking active()
        assert await until(lambda: not Path(f"/proc/{pid}").exists())
        assert not await driver.active()
        assert driver.details() == {} and driver.saved() == {}

    asyncio.run(main())


def test_async_start_that_fails_at_once_is_a_start_failure(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path, start_sync=False)
    write(folder(ctx) / "start.sh", "echo 'no configuration file'\nexit 4\n")
    driver = exec_driver(ctx)
    with pytest.raises(ResourceError, match=r"failed \(exit 4\): no configuration file; log: "):
        asyncio.run(driver.start(Why()))
    assert not asyncio.run(driver.active())


def test_process_ignoring_sigterm_is_killed_within_stop_timeout(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path, start_sync=False, stop_timeout=0.6)
    ignoring = "trap '' TERM\nsleep 60 &\necho $! > child.pid\nwhile :; do sleep 0.05; done\n"
    write(folder(ctx) / "start.sh", ignoring)  # the ignored SIGTERM is inherited by sleep 60
    driver = exec_driver(ctx)  # no stop.sh: the process is just ended

    async def main():
        await driver.start(Why())
        pid = driver.details()["pid"]
        began = time.monotonic()
        await driver.stop(Why())
        assert 0.5 < time.monotonic() - began < 1.5  # the grace ends with the stop timeout
        assert not Path(f"/proc/{pid}").exists()
        assert ended(int((folder(ctx) / "child.pid").read_text()))  # the whole group

    asyncio.run(main())


def test_failed_stop_script_leaves_process_for_the_retry(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path, start_sync=False)
    write(folder(ctx) / "start.sh", "exec sleep 60\n")
    write(folder(ctx) / "stop.sh", 'echo "$CLP_PID" >> stop.pid\nexit 1\n')
    driver = exec_driver(ctx)

    async def main():
        await driver.start(Why())
        pid = driver.details()["pid"]
        with pytest.raises(ResourceError, match=r"stop script of exec resource httpd failed"):
            await driver.stop(Why())
        assert await driver.active()
        write(folder(ctx) / "stop.sh", 'echo "$CLP_PID" >> stop.pid\nkill "$CLP_PID"\n')
        await driver.stop(Why())
        assert not await driver.active()
        return pid

    pid = asyncio.run(main())
    assert (folder(ctx) / "stop.pid").read_text() == f"{pid}\n{pid}\n"


def test_asynchronous_stop_script_is_not_waited_for(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path, start_sync=False, stop_sync=False)
    write(folder(ctx) / "start.sh", "exec sleep 60\n")
    write(folder(ctx) / "stop.sh", 'sleep 0.4\necho "$CLP_PID" > stop.pid\n')
    driver = exec_driver(ctx)

    async def main():
        await driver.start(Why())
        pid = driver.details()["pid"]
        began = time.monotonic()
        await driver.stop(Why())
        assert time.monotonic() - began < 0.3
        assert not await driver.active()
        assert await until(lambda: (folder(ctx) / "stop.pid").exists())
        await driver.close()
        return pid

    pid = asyncio.run(main())
    assert (folder(ctx) / "stop.pid").read_text() == f"{pid}\n"


# --- an actor restart ------------------------------------------------------------------------

RESTART_HELPER = """\
import asyncio, json, os, sys
from supervisor import reaper
from actors.resources.base import ResourceContext, Why
from actors.resources.exec import ExecDriver

assert reaper.become_subreaper()  # as the real supervisor: orphans come to us
ctx = ResourceContext(**json.loads(sys.argv[1]))
actor = os.fork()
if actor == 0:
    async def main():
        driver = ExecDriver(ctx)
        await driver.start(Why())
        with open(sys.argv[2], "w") as f:
            json.dump(driver.saved(), f)
        await driver.close()
    asyncio.run(main())
    os._exit(0)  # the actor is gone; what it started lives on
os.waitpid(actor, 0)
print("ready", flush=True)
sys.stdin.read()  # until the test has stopped the resource
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
"""


def test_pid_survives_actor_restart_clp_pid_18(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path, start_sync=False)
    write(folder(ctx) / "start.sh", "exec sleep 60\n")
    write(folder(ctx) / "stop.sh", 'echo "$CLP_PID" > stop.pid\n')
    fields = {k: getattr(ctx, k) for k in ("server", "group", "resource", "params", "priority")}
    fields.update(state_dir=ctx.state_dir, config_dir=ctx.config_dir)
    saved_file = tmp_path / "saved.json"
    helper = subprocess.Popen(
        [sys.executable, "-c", RESTART_HELPER, json.dumps(fields), str(saved_file)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    pid = None
    try:
        assert select.select([helper.stdout], [], [], 10)[0], "the helper did not get ready"
        assert helper.stdout.readline() == b"ready\n"
        saved = json.loads(saved_file.read_text())
        pid = saved["pid"]
        assert Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[1] == str(helper.pid), (
            "the started process should now be the subreaper's, not its old actor's"
        )
        driver = exec_driver(ctx)
        driver.restore(saved)

        async def main():
            assert await driver.active()
            assert driver.details() == {"pid": pid}
            assert driver.saved() == saved
            await driver.stop(Why())
            assert not await driver.active()

        asyncio.run(main())
        assert int((folder(ctx) / "stop.pid").read_text()) == pid
        assert ended(pid)
        helper.communicate(b"", timeout=10)
        assert helper.returncode == 0
        assert not Path(f"/proc/{pid}").exists()
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()
        if pid is not None and not ended(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("wrong", ["start_time", "boot_id"])
def test_restore_refuses_a_reused_pid(tmp_path, wrong, exec_driver):
    ctx = make_ctx(tmp_path, start_sync=False)
    write(folder(ctx) / "stop.sh", 'echo "${CLP_PID-unset}" > stop.pid\n')
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        saved = {"pid": stranger.pid, "start_time": start_time(stranger.pid), "boot_id": boot_id()}
        saved[wrong] = saved[wrong] + 1 if wrong == "start_time" else "another-boot"
        driver = exec_driver(ctx)
        driver.restore(saved)

        async def main():
            assert not await driver.active()
            assert driver.details() == {} and driver.saved() == {}
            await driver.stop(Why())

        asyncio.run(main())
        assert (folder(ctx) / "stop.pid").read_text() == "unset\n"
        time.sleep(0.05)
        assert stranger.poll() is None, "a process that is not ours was signalled"
    finally:
        stranger.kill()
        stranger.wait()


# --- paths and names -------------------------------------------------------------------------


@pytest.mark.parametrize("start_sync", [True, False])
def test_spaces_and_double_quotes_in_paths_and_names_20_39(tmp_path, start_sync, exec_driver):
    conf = tmp_path / 'my "cluster" conf'
    ctx = make_ctx(
        tmp_path, conf, group="web group", resource='the "app" server', start_sync=start_sync
    )
    body = 'echo "$CLP_GROUPNAME|$CLP_RESOURCENAME|$(pwd)|${CLP_PID-none}" >> "$CLP_PATH/trail"\n'
    write(folder(ctx) / "start.sh", body + ("" if start_sync else "exec sleep 60\n"))
    stop = write(tmp_path / 'user "bin" dir' / "stop it.sh", body)
    ctx.params["stop"] = str(stop)
    driver = exec_driver(ctx)

    async def main():
        await driver.start(Why())
        pid = driver.details().get("pid")
        assert await driver.active()
        await driver.stop(Why())
        assert not await driver.active()
        return pid

    pid = asyncio.run(main())
    assert (folder(ctx) / "trail").read_text().splitlines()[0] == (
        f'web group|the "app" server|{folder(ctx)}|none'
    )
    assert (stop.parent / "trail").read_text() == (
        f'web group|the "app" server|{stop.parent}|{pid or "none"}\n'
    )


def test_script_paths(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path, start="bin dir/run.sh", stop="/opt/x/halt.sh")
    driver = exec_driver(ctx)
    assert driver.start_script == str(tmp_path / "conf" / "bin dir" / "run.sh")
    assert driver.stop_script == "/opt/x/halt.sh"
    other = exec_driver(make_ctx(tmp_path, stop="halt.sh"))
    assert other.stop_script == str(tmp_path / "conf/scripts/web/httpd/halt.sh")
    with pytest.raises(ResourceError, match="cannot name a script folder"):
        exec_driver(make_ctx(tmp_path, group=".."))


# --- the log ---------------------------------------------------------------------------------


def test_log_is_rotated_before_a_run_once_past_its_size(tmp_path, exec_driver):
    ctx = make_ctx(tmp_path, log="logs/httpd.log", log_rotate_size=100)
    line = "x" * 79
    write(folder(ctx) / "start.sh", f"echo {line}\n")
    log = tmp_path / "conf" / "logs" / "httpd.log"

    async def main():
        driver = exec_driver(ctx)
        await driver.start(Why())
        assert log.read_text() == f"{line}\n"  # 80 bytes
        await driver.start(Why())
        assert log.read_text() == f"{line}\n" * 2  # 80 <= 100 before the run: appended
        await driver.start(Why())  # 160 > 100: rotated first
        assert Path(f"{log}.1").read_text() == f"{line}\n" * 2
        assert log.read_text() == f"{line}\n"
        await driver.start(Why())
        await driver.start(Why())  # one generation only: .1 replaced
        assert Path(f"{log}.1").read_text() == f"{line}\n" * 2

    asyncio.run(main())


# --- stale script folders --------------------------------------------------------------------


def test_clean_stale_script_dirs_removes_only_product_made_folders(tmp_path):
    root = tmp_path / "scripts"

    def scripts(rel: str, *names: str) -> Path:
        d = root / rel
        d.mkdir(parents=True)
        for name in names:
            (d / name).write_text("#!/bin/sh\n")
        return d

    scripts("web/httpd", "start.sh", "stop.sh")  # configured
    scripts("web/old app", "start.sh", "stop.sh")  # gone, product-made
    scripts("web/empty")  # gone, empty
    scripts("web/custom", "start.sh", "helper.sh")  # gone, but a person put a file there
    scripts("web/nested", "start.sh").joinpath("sub").mkdir()
    elsewhere = scripts("../elsewhere", "start.sh")
    (root / "web" / "linked").symlink_to(elsewhere)
    scripts("old group/db", "start.sh")  # whole group gone
    scripts("kept group/db", "start.sh", "notes.txt")  # group gone, folder not ours
    scripts("a b/c d", "stop.sh")  # configured, spaces
    configured = {"web": {"httpd"}, "a b": {"c d"}, "new": {"x"}}

    removed = exec_files.clean_stale_script_dirs(str(root), configured)

    assert removed == sorted(
        str(root / rel) for rel in ("web/old app", "web/empty", "old group/db", "old group")
    )
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert left == [
        "a b",
        "a b/c d",
        "a b/c d/stop.sh",
        "kept group",
        "kept group/db",
        "kept group/db/notes.txt",
        "kept group/db/start.sh",
        "web",
        "web/custom",
        "web/custom/helper.sh",
        "web/custom/start.sh",
        "web/httpd",
        "web/httpd/start.sh",
        "web/httpd/stop.sh",
        "web/linked",
        "web/nested",
        "web/nested/start.sh",
        "web/nested/sub",
    ]
    assert (elsewhere / "start.sh").exists()
    assert exec_files.clean_stale_script_dirs(str(root), configured) == []
    assert exec_files.clean_stale_script_dirs(str(tmp_path / "none"), configured) == []
