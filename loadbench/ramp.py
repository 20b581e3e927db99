"""Ramping users (k6's ramping-VUs): how many virtual users run at each moment.

`users` stages draw a line through (0, 0), (d1, u1), (d1 + d2, u2), ...: the run's users
go linearly from 0 to the first stage's target, then from each target to the next, and
the last target holds after the last stage. User number `n` (1, 2, ...) is active while
the line is at or above `n`, so a ramp starts a user as it crosses each whole number on
the way up and retires the highest-numbered one first on the way down.

Shards share the users by number: shard `k` of `s` owns numbers k+1, k+1+s, k+1+2s, ...
(its local user `j` is number j*s + k + 1), so at every moment the shards' counts are
integers that sum to the run's count, and the first shards get the remainder, like the
request budget in `LoadPlan.split`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_EPS = 1e-9  # a line that reaches n up to rounding counts as n


@dataclass(frozen=True)
class UsersRamp:
    """Piecewise-linear users of a whole run; `stages` are (duration_s, users at its end)."""

    stages: tuple[tuple[float, int], ...]

    @classmethod
    def from_stages(cls, stages) -> UsersRamp:
        return cls(tuple((float(stage.duration), int(stage.users)) for stage in stages))

    @property
    def peak(self) -> int:
        return max(users for _, users in self.stages)

    def level(self, t: float) -> float:
        """The line at `t` seconds from the ramp's start (fractional users)."""
        start_t, start_users = 0.0, 0.0
        for duration, users in self.stages:
            if t < start_t + duration:
                return start_users + (users - start_users) * max(t - start_t, 0.0) / duration
            start_t, start_users = start_t + duration, float(users)
        return start_users

    def users_at(self, t: float) -> int:
        """Users of the whole run that should be active at `t`."""
        return math.floor(self.level(t) + _EPS)

    def active_from(self, number: int, t: float) -> float:
        """The first moment at or after `t` at which user `number` is active (`t` itself if
        it is active now); inf if it never is again."""
        start_t, start_users = 0.0, 0.0
        for duration, users in self.stages:
            end_t = start_t + duration
            if t < end_t:
                at = max(t, start_t)
                if self._value(start_t, start_users, duration, users, at) + _EPS >= number:
                    return at
                if users > start_users and users + _EPS >= number:  # it crosses on the way up
                    return max(at, start_t + (number - start_users) * duration
                               / (users - start_users))
            start_t, start_users = end_t, float(users)
        return max(t, start_t) if start_users + _EPS >= number else math.inf

    @staticmethod
    def _value(start_t: float, start_users: float, duration: float, users: float,
               at: float) -> float:
        return start_users + (users - start_users) * (at - start_t) / duration


def share(total: int, shard: int, shards: int) -> int:
    """Shard `shard`'s part of `total` users (see the module docstring)."""
    return total // shards + (1 if shard < total % shards else 0)


def user_number(index: int, shard: int, shards: int) -> int:
    """The run-wide number (1, 2, ...) of local user `index` of a shard."""
    return index * shards + shard + 1


def stages_problem(run, takes_users: bool) -> str | None:
    """Why a run's `stages` cannot run as given (scenario validation), or None."""
    ramps_users = [stage.users is not None for stage in run.stages]
    if len(set(ramps_users)) > 1:
        index = ramps_users.index(not ramps_users[0])
        return (f"stages[{index}] gives {'users' if ramps_users[index] else 'rate'} but "
                f"stages[0] gives {'users' if ramps_users[0] else 'rate'}: a run's stages "
                "ramp 'rate' or 'users', not both")
    if not ramps_users[0]:
        return None
    if not takes_users:
        return (f"client {run.client!r} runs one user: 'users' stages need client 'gather' "
                "or 'multiprocess'")
    if run.rate is not None:
        return ("'users' stages run closed loop: drop 'rate' (or ramp the rate with 'rate' "
                "stages, 'concurrency' users at most)")
    if run.concurrency is not None:
        return ("'users' stages set the users (from 0 at the start): drop 'concurrency'; "
                "to start with N users, begin with a short stage, e.g. {duration: 1ms, "
                "users: N}")
    if not any(stage.users for stage in run.stages):
        return "'users' stages never go above 0 users: nothing would be sent"
    return None


__all__ = ["UsersRamp", "share", "stages_problem", "user_number"]
