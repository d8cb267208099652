"""The node's pub/sub proxy: XSUB in, XPUB out, on ipc:// sockets in the state directory.

It runs ZeroMQ's C proxy loop in a thread of the supervisor (no Python per message), steered by a
PAIR control socket so that stop() ends it promptly and every socket is closed by its owner thread.
"""

from __future__ import annotations

import contextlib
import os
import threading

import zmq

from bus.envelope import MAX_FRAME_BYTES
from bus.paths import NodePaths

BURST = 10_000  # messages queued per subscriber (and from publishers) before drops


class Proxy:
    def __init__(self, ctx: zmq.Context, paths: NodePaths) -> None:
        self._ctx = ctx
        self._paths = paths
        self._control_endpoint = f"inproc://haven-proxy-{id(self)}"
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._control: zmq.Socket | None = None

    def start(self, timeout: float = 5.0) -> None:
        self._control = self._ctx.socket(zmq.PAIR)
        self._control.linger = 0
        self._control.bind(self._control_endpoint)
        self._thread = threading.Thread(target=self._run, name="bus-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("bus proxy did not start")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        xsub = self._ctx.socket(zmq.XSUB)
        xpub = self._ctx.socket(zmq.XPUB)
        control = self._ctx.socket(zmq.PAIR)
        for s in (xsub, xpub, control):
            s.linger = 0
        # A publisher sending a frame over the envelope limit is disconnected by libzmq here,
        # at the entrance, instead of every subscriber receiving it in full only to drop it.
        xsub.maxmsgsize = MAX_FRAME_BYTES + 4096
        # A burst (an alert storm: hundreds of groups failing over) must reach a subscriber that
        # takes a moment per event (the alert log writes each one) rather than be dropped at
        # libzmq's default of 1000 queued messages; memory is used only while a backlog lasts.
        xsub.rcvhwm = xpub.sndhwm = BURST
        try:
            xsub.bind(self._paths.publish_endpoint)
            xpub.bind(self._paths.subscribe_endpoint)
            control.connect(self._control_endpoint)
            self._ready.set()
            zmq.proxy_steerable(xsub, xpub, None, control)
        except zmq.ContextTerminated:
            pass
        except BaseException as exc:  # surfaced to start() or logged by the owner
            self._error = exc
            self._ready.set()
        finally:
            for s in (xsub, xpub, control):
                s.close()

    def stop(self, timeout: float = 2.0) -> None:
        if self._control is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._control.send(b"TERMINATE", zmq.NOBLOCK)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._control is not None:
            self._control.close()
            self._control = None
        for endpoint in (self._paths.publish_endpoint, self._paths.subscribe_endpoint):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(endpoint.removeprefix("ipc://"))
