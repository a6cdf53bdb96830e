"""The lock a training process holds on its run directory while it trains the run.

`<run_dir>/.lock` is a JSON file naming the holder: `pid`, `host` (the host name),
`start_time` (the process's start time in clock ticks after boot, field 22 of
/proc/<pid>/stat, so a recycled pid is not mistaken for the holder), `boot_id` (a lock
written before the last reboot is stale however its pid looks), `run_id` and `created`
(seconds since the epoch, for people). It is created with O_CREAT | O_EXCL and removed when
the process ends its training, also when a signal stopped it. A process killed outright
(SIGKILL, the OOM killer) leaves it behind: the next `zoo train --resume` sees that its
holder is gone and takes it over.

A lock held by a live process of this host, or written on another host (whose processes
cannot be checked from here), is never taken over: `RunLockedError` says who holds it and
how to clear it.
"""

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

LOCK_NAME = ".lock"
# flock()ed while a lock is checked and taken: two processes that both find the same stale
# lock must not both take it over (the second would delete the first one's new lock). The
# kernel drops a flock when its process dies, so this file can never go stale.
GUARD_NAME = ".lock.guard"


class RunLockedError(ValueError):
    """The run is held by another training process (or one that cannot be checked)."""


def process_identity(pid=None):
    """What a lock records about process `pid` (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "host": socket.gethostname(), "start_time": process_start_time(pid),
            "boot_id": _boot_id()}


def process_start_time(pid):
    """Clock ticks after boot when `pid` started (/proc/<pid>/stat field 22), or None when
    there is no such process (or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count after its last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _boot_id():
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def holder_state(holder):
    """`live`, `stale` (a process of this host that is gone) or `foreign` (another host)."""
    if holder.get("host") != socket.gethostname():
        return "foreign"
    if holder.get("boot_id") and holder["boot_id"] != _boot_id():
        return "stale"
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return "stale"
    if process_start_time(pid) is None:
        return "live" if pid_exists(pid) else "stale"  # no /proc: the pid is all we have
    return "live" if process_start_time(pid) == holder.get("start_time") else "stale"


def pid_exists(pid):
    """Whether a process `pid` runs on this host (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


class RunLock:
    """A held lock; `release()` removes the file if it is still this process's."""

    def __init__(self, path, identity):
        self.path = Path(path)
        self.identity = identity

    def release(self):
        if _read(self.path) == self.identity:
            self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def hold(run_dir, run_id=None):
    """The run directory's lock for the duration of the block (see `acquire`)."""
    lock = acquire(run_dir, run_id)
    try:
        yield lock
    finally:
        lock.release()


def acquire(run_dir, run_id=None):
    """Lock `run_dir` (created if missing) for this process; a stale lock of this host is
    taken over with a line on stdout.

    Raises:
        RunLockedError: a live process of this host, or a process of another host, holds it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    identity = {**process_identity(), "run_id": run_id, "created": round(time.time(), 3)}
    with _guard(run_dir):
        if _create(path, identity):
            return RunLock(path, identity)
        holder = _read(path)
        state = holder_state(holder) if holder is not None else "unreadable"
        if state != "stale":
            raise RunLockedError(_refusal(path, holder, state))
        print(f"run lock {path}: taking over from pid {holder.get('pid')} on "
              f"{holder.get('host')}, which is gone", flush=True)
        path.unlink()
        if not _create(path, identity):  # only a process of another host, not guarded
            raise RunLockedError(_refusal(path, _read(path), "foreign"))
    return RunLock(path, identity)


@contextlib.contextmanager
def _guard(run_dir):
    descriptor = os.open(run_dir / GUARD_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):  # a file system without flock: best effort
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # drops the flock


def _create(path, identity):
    """Write the lock file if there is none; False if there is one."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(identity))
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _read(path):
    """The lock file's holder, or None when it is missing or not a lock's JSON."""
    try:
        holder = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _refusal(path, holder, state):
    holder = holder or {}
    who = f"pid {holder.get('pid')} on host {holder.get('host')}"
    if holder.get("created"):
        who += " since " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["created"]))
    if state == "live":
        return (f"run directory {path.parent} is locked by a training that is still running "
                f"({who}); stop that process first (a stopped training releases its lock)")
    if state == "foreign":
        return (f"run directory {path.parent} is locked by {who}, another host, whose process "
                f"cannot be checked from here; if that training is gone, delete {path} and "
                "resume again")
    return (f"run directory {path.parent} has a lock file that cannot be read ({path}); if no "
            "training holds this run, delete it and resume again")
