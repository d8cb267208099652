"""`python -m lab.spawn [--log F] [--cgroup DIR] [--cwd D] -- CMD...`: start CMD detached and print
"<pid> <start time>".

CMD gets its own session (so it is its session's leader: the session id is its pid), joins the
cgroup DIR first when given (so every process it ever forks is in it), appends its output to F
(stdin is /dev/null), and is re-parented to init when this helper exits at once: it outlives
whoever ran `haven lab`, and no lab command is ever its parent. A CMD that cannot be started is
reported on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys


def start_time(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.spawn")
    parser.add_argument("--log", default=os.devnull)
    parser.add_argument("--cgroup")
    parser.add_argument("--cwd", default="/")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given")
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the command to be
        try:
            os.close(r)
            os.setsid()
            if args.cgroup:
                with open(os.path.join(args.cgroup, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            null = os.open(os.devnull, os.O_RDONLY)
            out = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.chdir(args.cwd)
            os.execvp(cmd[0], cmd)
        except BaseException as exc:  # noqa: BLE001 (reported to the parent, then exit)
            os.write(w, f"cannot start {cmd[0]}: {exc}".encode())
        os._exit(127)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        failure = f.read()  # EOF at the successful exec (close-on-exec) or the child's exit
    if failure:
        os.waitpid(pid, 0)
        print(failure.decode(errors="replace"), file=sys.stderr)
        return 1
    print(pid, start_time(pid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
