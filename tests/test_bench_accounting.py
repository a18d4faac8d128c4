"""bench/cpu_accounting.py: the machine's cores during a benchmark's timed window, read from /proc."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "cpu_accounting", Path(__file__).resolve().parent.parent / "bench" / "cpu_accounting.py")
cpu_accounting = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("cpu_accounting", cpu_accounting)  # its dataclasses look their module up there
_spec.loader.exec_module(cpu_accounting)
CpuSnapshot, CpuUse = cpu_accounting.CpuSnapshot, cpu_accounting.CpuUse

linux = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="no /proc/stat: not Linux")

# Burns the CPU seconds given as its argument.
BURN = "import sys, time\nend = time.process_time() + float(sys.argv[1])\nwhile time.process_time() < end: pass"
# A child that names itself (its comm, at most 15 characters, with the parentheses /proc's stat line wraps it in);
# when told to, it burns CPU itself and in a grandchild it waits for (counted in its own stat line as its waited-for
# children's time), says when it is done, and exits when its input closes.
BURNER = r"""
import subprocess, sys, time
name, seconds, burn = sys.argv[1:]
open("/proc/self/comm", "w").write(name)
print("named", flush=True)
sys.stdin.readline()
end = time.process_time() + float(seconds)
while time.process_time() < end:
    pass
subprocess.run([sys.executable, "-c", burn, seconds], check=True)
print("burnt", flush=True)
sys.stdin.readline()
"""


def test_the_least_wall_is_the_busy_cpu_spread_over_every_core() -> None:
    before = CpuSnapshot(busy=100.0, steal=1.0, groups={"PostgreSQL": 10.0, "Redis": 2.0})
    after = CpuSnapshot(busy=130.0, steal=1.5, groups={"PostgreSQL": 22.0, "Redis": 2.5})
    use = CpuUse.between(before, after, wall=20.0)
    assert use.cores == (cpu_accounting.os.cpu_count() or 1)
    assert use.busy == 30.0 and use.steal == 0.5
    assert use.groups == {"PostgreSQL": 12.0, "Redis": 0.5}
    assert use.cores_busy == 1.5
    # 30 s of CPU on the machine's cores, against a floor of 1.5 s.
    assert use.least_wall == pytest.approx(30.0 / use.cores)
    assert use.bound(1.5) == pytest.approx(30.0 / use.cores / 1.5)
    assert f"at least {30.0 / use.cores:.1f} s" in use.bound_line(1.5)
    assert "cores busy 1.50" in use.line() and "PostgreSQL 12.0 s" in use.line()
    assert CpuUse.between(None, after, 20.0) is None
    assert CpuUse.between(before, after, 0.0) is None


@linux
def test_a_group_s_processes_are_counted_by_their_name_even_one_with_parentheses(monkeypatch) -> None:
    name = "p) q r s t u"  # what a split of /proc/<pid>/stat on spaces, or at its first ")", would misread
    monkeypatch.setattr(cpu_accounting, "GROUPS", {name: "burner"})
    child = subprocess.Popen([sys.executable, "-c", BURNER, name, "0.3", BURN], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "named"
        before = CpuSnapshot.now()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "burnt"
        after = CpuSnapshot.now()
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    use = CpuUse.between(before, after, wall=1.0)
    # Its 0.3 s of CPU and its grandchild's 0.3 s (ticks of 10 ms, and the grandchild's start-up), counted in the
    # group and in the machine's busy time.
    assert 0.55 <= use.groups["burner"] <= 1.5
    assert use.busy >= use.groups["burner"] - 0.05
