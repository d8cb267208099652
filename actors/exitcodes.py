"""The exit-code contract between an actor process and its supervisor (as pacemakerd's children).

Any other non-zero code (and death by a signal) means "restart me" within the restart intensity.
"""

OK = 0  # finished on purpose; a `transient` child is not restarted
RESTART = 1  # failed, restartable
FATAL = 100  # do not restart; stop the node service (a configuration the actor cannot run with)
PANIC = 101  # self-fence now: the node-level panic action (the actor found the node unsafe)

NAMES = {OK: "ok", RESTART: "restart", FATAL: "fatal", PANIC: "panic"}
