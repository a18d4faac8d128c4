"""Where this machine's cores went during a timed window, from /proc (Linux): every core's busy time, and how much
of it PostgreSQL's and Redis's processes used. A benchmark takes `CpuSnapshot.now()` before and after what it times
and prints `CpuUse.line()`.

Why: on a machine whose cores the database shares, a command's wall time cannot go below everything's CPU divided
by the cores, however its work is spread. `CpuUse.bound(floor)` is that wall time as a multiple of a floor measured
in the same run: the best ratio the same work could reach on this machine.

- Busy: user, nice, system, irq and softirq time in /proc/stat (iowait and idle are not busy; steal, time the
  hypervisor gave to another guest, is printed apart).
- PostgreSQL: every process named `postgres` (the postmaster, its background processes and the backends), its own
  time and its waited-for children's (a backend that exits within the window is counted in the postmaster's).
- Redis: the processes named `redis-server`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
GROUPS = {"postgres": "PostgreSQL", "redis-server": "Redis"}


def _machine() -> tuple[float, float]:
    """(busy, steal) seconds of every core since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq) / TICK, steal / TICK


def _groups() -> dict[str, float]:
    """CPU seconds of each group's live processes, with the children they have waited for."""
    seconds = dict.fromkeys(GROUPS.values(), 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we walked
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        group = GROUPS.get(comm)
        if group is None:
            continue
        # Fields after the command: state is the 3rd field of the line; utime, stime, cutime, cstime the 14th-17th.
        after = stat[stat.rindex(")") + 2:].split()
        seconds[group] += sum(int(v) for v in after[11:15]) / TICK
    return seconds


@dataclass(frozen=True)
class CpuSnapshot:
    busy: float
    steal: float
    groups: dict[str, float]

    @classmethod
    def now(cls) -> CpuSnapshot | None:
        """None where there is no /proc/stat (not Linux): the benchmark then prints nothing about the cores."""
        if not Path("/proc/stat").exists():
            return None
        busy, steal = _machine()
        return cls(busy, steal, _groups())


@dataclass(frozen=True)
class CpuUse:
    wall: float
    busy: float
    steal: float
    groups: dict[str, float]
    cores: int

    @classmethod
    def between(cls, before: CpuSnapshot | None, after: CpuSnapshot | None, wall: float) -> CpuUse | None:
        if before is None or after is None or wall <= 0:
            return None
        groups = {name: after.groups[name] - before.groups[name] for name in before.groups}
        return cls(wall, after.busy - before.busy, after.steal - before.steal, groups, os.cpu_count() or 1)

    @property
    def cores_busy(self) -> float:
        return self.busy / self.wall

    @property
    def least_wall(self) -> float:
        """The least wall time this much CPU takes on these cores."""
        return self.busy / self.cores

    def bound(self, floor: float) -> float:
        """least_wall as a multiple of `floor`."""
        return self.least_wall / floor

    def bound_line(self, floor: float) -> str:
        return (f"that CPU on {self.cores} cores takes at least {self.least_wall:.1f} s = {self.bound(floor):.1f}x "
                "the floor")

    def line(self) -> str:
        groups = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.groups.items())
        return (f"cores busy {self.cores_busy:.2f} of {self.cores} on average ({self.busy:.1f} s of CPU in "
                f"{self.wall:.1f} s: {groups}, the rest the benchmarked processes and others; steal "
                f"{self.steal:.1f} s)")
