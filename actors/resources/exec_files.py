"""The files of an `exec` resource: where its scripts are, its output log, stale script folders.

Scripts made with the product live beside the configuration file, one folder per resource:
`scripts/<group>/<resource>/start.sh` (SPEC §5). Names may hold spaces and double quotes; they
are only ever joined into paths and handed to `exec` as one argument, never to a shell.
"""

from __future__ import annotations

import os
import shutil

from actors.resources.base import ResourceContext, ResourceError

PRODUCT_SCRIPTS = frozenset({"start.sh", "stop.sh"})  # what the product writes into the folder
DEFAULT_LOG_ROTATE_SIZE = 1024 * 1024
TAIL_BYTES = 64 * 1024  # enough to find the last line of a failed run's output


def script_dir(ctx: ResourceContext) -> str:
    """`scripts/<group>/<resource>` under the configuration's folder."""
    for name in (ctx.group, ctx.resource):
        if not name or "/" in name or "\0" in name or name in (".", ".."):
            raise ResourceError(
                f"exec resource {ctx.resource!r} of group {ctx.group!r}: {name!r} cannot name "
                "a script folder; rename it"
            )
    return os.path.join(ctx.config_dir, "scripts", ctx.group, ctx.resource)


def script_path(ctx: ResourceContext, value: str) -> str:
    """A `start` / `stop` parameter as a path.

    A bare file name (the defaults `start.sh`, `stop.sh`) is a product-made script in the
    resource's own folder; an absolute path is the user's program; a relative path with a slash
    is relative to the configuration's folder, like every other path parameter."""
    if "/" not in value:
        return os.path.join(script_dir(ctx), value)
    return ctx.path(value)


def log_path(ctx: ResourceContext) -> str:
    value = ctx.params.get("log")
    return ctx.path(value) if value else os.path.join(ctx.state_dir, "exec.log")


def prepare_log(path: str, rotate_size: int | None) -> int:
    """Make the log ready for one more run: its folder exists, and a log grown past
    `rotate_size` becomes `<log>.1` (the one kept generation). Returns the offset where this
    run's output will start, so a failure can quote its own last line and nobody else's.

    An asynchronous start script still running keeps writing into the file it was given, which
    after a rotation is `<log>.1`: its output is never lost, only found one generation back."""
    limit = rotate_size or DEFAULT_LOG_ROTATE_SIZE
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return 0
    if size <= limit:
        return size
    os.replace(path, path + ".1")
    return 0


def last_line(path: str, offset: int) -> str:
    """The last non-empty line written to the log since `offset` ("" when there is none)."""
    try:
        with open(path, "rb") as log:
            end = log.seek(0, os.SEEK_END)
            log.seek(max(offset, end - TAIL_BYTES) if end >= offset else 0)
            data = log.read()
    except OSError:
        return ""
    lines = [line.strip() for line in data.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:500] if lines else ""


def clean_stale_script_dirs(scripts_root: str, groups: dict[str, set[str]]) -> list[str]:
    """Remove the script folders of resources the configuration no longer has (SPEC §5: the
    original left them behind). `groups` maps every configured group to its resources' names.

    Only what is certainly ours goes: a `scripts/<group>/<resource>/` folder (not a symlink)
    that holds nothing but regular files named `start.sh` / `stop.sh`, or nothing at all. A
    folder with anything else in it (a helper script, a sub-folder, a symlink, an editor's
    backup) was touched by a person and is left for them. The folder of a group that is gone is
    removed once it is empty. Returns the removed folders' paths, sorted."""
    removed: list[str] = []
    try:
        group_dirs = [e for e in os.scandir(scripts_root) if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for group_dir in group_dirs:
        known = groups.get(group_dir.name)
        try:
            resource_dirs = list(os.scandir(group_dir.path))
        except OSError:
            continue
        for resource_dir in resource_dirs:
            if known is not None and resource_dir.name in known:
                continue
            if resource_dir.is_dir(follow_symlinks=False) and _product_made(resource_dir.path):
                try:
                    shutil.rmtree(resource_dir.path)
                except OSError:
                    continue
                removed.append(resource_dir.path)
        if known is None:
            try:
                os.rmdir(group_dir.path)  # only succeeds when empty
            except OSError:
                continue
            removed.append(group_dir.path)
    return sorted(removed)


def _product_made(folder: str) -> bool:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    return all(e.name in PRODUCT_SCRIPTS and e.is_file(follow_symlinks=False) for e in entries)
