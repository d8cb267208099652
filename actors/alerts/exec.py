"""`alert.exec`: run a configured command for each alert, the alert in its environment — like
Pacemaker's alert agents, so an operator can page, open a ticket or light a lamp with a script.

The command gets `HAVEN_ALERT_SERVER`, `_MODULE`, `_EVENT`, `_ID`, `_LEVEL`, `_MESSAGE`, `_TIME`
(the origin's wall clock, ISO 8601 UTC), `_TIMESTAMP` (seconds), `_DESTINATION` and `_DETAILS`
(the details as JSON), and the whole alert as one JSON document on its standard input. It runs in
its own session with an exact deadline (`timeout`, the whole process group killed at it), one at
a time, in the order the alerts were raised. A command that fails or times out is counted and
logged and the next alert goes on: it is not run again for the same alert (it may have done half
its job), and the alert log keeps the record.
"""

from __future__ import annotations

import datetime
import json
import os

from actors.alerts.record import Alert
from actors.alerts.sender import AlertSender, DeliveryError
from actors.resources import command


def alert_environment(alert: Alert, destination: str) -> dict[str, str]:
    when = datetime.datetime.fromtimestamp(alert.time, datetime.UTC)
    return {
        "HAVEN_ALERT_SERVER": alert.server,
        "HAVEN_ALERT_MODULE": alert.module,
        "HAVEN_ALERT_EVENT": alert.event,
        "HAVEN_ALERT_ID": str(alert.id),
        "HAVEN_ALERT_LEVEL": alert.level,
        "HAVEN_ALERT_MESSAGE": alert.message,
        "HAVEN_ALERT_TIME": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "HAVEN_ALERT_TIMESTAMP": f"{alert.time:.3f}",
        "HAVEN_ALERT_DESTINATION": destination,
        "HAVEN_ALERT_DETAILS": json.dumps(alert.details, default=str, ensure_ascii=False),
    }


class ExecSender(AlertSender):
    retries = False

    async def prepare(self) -> None:
        # a relative path is the configuration's directory's (as exec resources' scripts)
        self.command = os.path.join(self.args.get("config_dir") or "", str(self.params["command"]))
        self.timeout = float(self.params.get("timeout") or 30.0)
        # a little beyond the command's own deadline: the runner kills it at `timeout`
        self.deliver_timeout = self.timeout + 5.0

    async def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            env = {**os.environ, **alert_environment(alert, self.destination)}
            env = {k: v.replace("\0", " ") for k, v in env.items()}  # NUL ends a C string
            payload = json.dumps(alert.as_dict(), default=str, ensure_ascii=False).encode()
            done = await command.run(
                [self.command], timeout=self.timeout, env=env, stdin=payload + b"\n"
            )
            if not done.ok:
                raise DeliveryError(done.describe(self.command))
