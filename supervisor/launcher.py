"""How actor processes are made.

`TemplateLauncher` forks, before the supervisor creates any ZeroMQ context, a template process that
holds every heavy module already imported (and `gc.freeze()`d, so reference counting does not touch
the shared pages). Each actor is a double fork of the template: the template's short-lived child
forks the actor and exits, so the actor is re-parented to the supervisor (a child subreaper), which
then watches and reaps it like any direct child. Measured (bench/memory.py): ~5 MB PSS per
actor instead of a fresh interpreter's ~15 MB; what remains private is CPython's reference
counting writing to the shared heap pages, which a template cannot avoid on Python 3.11.

`SpawnLauncher` starts a fresh interpreter per actor: the fallback when the template died, and the
baseline the benchmark compares with.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import struct
import sys

import msgpack

from actors.launch import LAUNCH_ENV, ActorLaunch

_MAX_MSG = 1 << 16


class LaunchError(RuntimeError):
    """This actor could not be launched (the launcher itself may still be fine)."""


class TemplateGone(LaunchError):
    """The template process is dead or stuck: use another launcher from now on."""


class SpawnLauncher:
    name = "spawn"

    def launch(self, launch: ActorLaunch) -> int:
        # The launch travels in the environment, not argv: `ps` shows argv to every user.
        argv = [sys.executable, "-m", "actors.runtime", launch.name]
        try:
            env = {**os.environ, LAUNCH_ENV: json.dumps(launch.to_dict())}
            return os.posix_spawn(sys.executable, argv, env)
        except (TypeError, ValueError, OSError) as exc:
            raise LaunchError(f"could not spawn: {exc}") from exc

    def close(self) -> None:
        pass


class TemplateLauncher:
    name = "template"

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self.pid: int | None = None

    def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # the template
            parent.close()
            code = 0
            try:
                _template_main(child)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        child.close()
        self._sock = parent
        self.pid = pid

    def launch(self, launch: ActorLaunch) -> int:
        if self._sock is None:
            raise TemplateGone("template process is not running")
        try:
            request = msgpack.packb(launch.to_dict())
        except (TypeError, ValueError) as exc:
            raise LaunchError(f"launch arguments cannot be sent: {exc}") from exc
        try:
            # A fork answers in milliseconds; the event loop waits on this, so keep it short.
            self._sock.settimeout(1.0)
            self._sock.send(request)
            reply = msgpack.unpackb(self._sock.recv(_MAX_MSG))
        except Exception as exc:  # EOF, EPIPE, a timeout, garbage: the template is unusable
            raise TemplateGone(f"template process did not answer: {exc!r}") from exc
        if not isinstance(reply, dict) or not isinstance(reply.get("pid"), int):
            raise LaunchError(f"template process could not fork: {reply.get('error', reply)!r}")
        return reply["pid"]

    def close(self, kill: bool = False) -> None:
        """Close the template's channel: it exits on EOF (or at once with `kill`); the caller
        reaps it."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if kill and self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def _template_main(sock: socket.socket) -> None:
    # Keep only stdio and the channel: the template must not pin the supervisor's files.
    fd = sock.fileno()
    os.closerange(3, fd)
    os.closerange(fd + 1, 65536)
    # It ends when the supervisor closes the channel, not on a terminal's Ctrl-C or hang-up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from actors import registry, runtime  # noqa: F401  (already imported: forked from the supervisor)

    registry.preload()
    gc.collect()
    gc.freeze()
    while True:
        data = sock.recv(_MAX_MSG)
        if not data:
            return
        try:
            launch = ActorLaunch.from_dict(msgpack.unpackb(data))
            pid = _double_fork(sock, launch)
            sock.send(msgpack.packb({"pid": pid}))
        except Exception as exc:  # a bad launch request never kills the template
            sock.send(msgpack.packb({"error": repr(exc)}))


def _double_fork(sock: socket.socket, launch: ActorLaunch) -> int:
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(r)
        try:
            pid = os.fork()
            if pid == 0:
                os.close(w)
                sock.close()
                code = 1
                try:
                    from actors import runtime

                    code = runtime.run(launch)
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            os.write(w, struct.pack("=i", pid))
        finally:
            os._exit(0)
    os.close(w)
    with contextlib.closing(os.fdopen(r, "rb")) as f:
        raw = f.read(4)
    os.waitpid(middle, 0)
    if len(raw) != 4:
        raise LaunchError("intermediate process died before reporting the actor's pid")
    return struct.unpack("=i", raw)[0]
