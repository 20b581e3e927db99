"""Checks made once before any load that need the machine, not just the scenario: the
open-file limit for the users, and every host the runs load resolves."""

from __future__ import annotations

import os

from loadbench.errors import BadInput, TargetError
from loadbench.plan import effective_target, resolve_shape
from loadbench.scenario import Scenario

FD_MARGIN = 32  # beyond one socket per user: the loop, pipes to shards and target, logs


def open_files_needed(users: int, in_use: int) -> int:
    """File descriptors one generator process needs for `users` connections."""
    return users + in_use + FD_MARGIN


def fit_open_files(users: int, in_use: int, soft: int, hard: int) -> int | None:
    """The soft RLIMIT_NOFILE to set for `users` per process (None: the current one does),
    or a BadInput naming the most users that fit under the hard limit."""
    import resource

    needed = open_files_needed(users, in_use)
    if soft == resource.RLIM_INFINITY or needed <= soft:
        return None
    if hard != resource.RLIM_INFINITY and needed > hard:
        fit = max(hard - in_use - FD_MARGIN, 0)
        raise BadInput(f"concurrency {users:,} needs about {needed:,} open files per process, "
                       f"but this system allows {hard:,} (ulimit -Hn): at most {fit:,} users "
                       "fit in one process; lower the concurrency, spread it over processes "
                       "(client multiprocess, concurrency is per process) or raise the limit")
    return hard if hard != resource.RLIM_INFINITY else needed


def ensure_open_files(scenario: Scenario) -> None:
    """Once, before any load: raise the soft open-file limit towards the hard one so every
    user gets its connection (child processes and the target inherit it), or refuse (exit 2)
    instead of a run of "too many open files" connect errors."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    users = max(resolve_shape(scenario, run).concurrency for run in scenario.runs)
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 32
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        wanted = fit_open_files(users, in_use, soft, hard)
    except BadInput as exc:
        name = next(run.name for run in scenario.runs
                    if resolve_shape(scenario, run).concurrency == users)
        raise BadInput(f"run {name!r}: {exc}") from None
    if wanted is not None:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            raise BadInput(f"run {scenario.runs[0].name!r}: concurrency {users:,} needs about "
                           f"{open_files_needed(users, in_use):,} open files; raising the "
                           f"limit from {soft:,} failed ({exc}); try ulimit -n") from None


def resolve_hosts(scenario: Scenario) -> None:
    """Resolve every host the runs load ONCE, before any load: an unknown name is one line
    (exit 3) instead of a run of failed lookups on the hot path."""
    import socket
    from urllib.parse import urlsplit

    hosts: set[tuple[str, int]] = set()
    for run in scenario.runs:
        spec = effective_target(scenario, run)
        for request in run.requests or scenario.requests:
            url = request.path if request.path.startswith(("http://", "https://")) else (
                spec.url)
            if url is None:  # a target app we start ourselves
                continue
            parts = urlsplit(url)
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                continue  # not ours to judge here: URL checks report it
            if parts.hostname:
                hosts.add((parts.hostname, port))
    for host, port in sorted(hosts):
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc)
            raise TargetError(f"cannot resolve host {host!r}: {detail}") from None

