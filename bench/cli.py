"""Start-up of the ``digest`` command (issue 17) beside ``python -c pass`` in the same run.

Each case is a fresh child process, run ``--runs`` times, alternating with the others so that a busy
neighbour slows every case alike. Per case: the median wall time and the median CPU time (user + system,
from the child's rusage) and both minus the baseline's. Cases:

- baseline: ``python -c pass`` (the interpreter's own start-up);
- ``digest --help``: the whole command tree built, no command run (target: at most 0.3 s over baseline);
- ``digest feeds list``: a command that reads one table, on the embedded default (SQLite in a fresh
  ``DIGEST_HOME``, migrated beforehand, untimed; target: at most 0.6 s over baseline).

Wall time is the target's measure; CPU time is printed too because the machine is shared and the wall
time there includes the neighbours. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIGEST = [sys.executable, "-m", "digest.cli"]
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "digest --help": [*DIGEST, "--help"],
    "digest feeds list": [*DIGEST, "feeds", "list"],
}
TARGETS = {"digest --help": 0.3, "digest feeds list": 0.6}


def child(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process run to completion (it must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    """Migrate a fresh home, time every case, print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp()) / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"DIGEST_HOME": str(home)}
    subprocess.run([*DIGEST, "db", "upgrade"], env=env, check=True, capture_output=True)
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in CASES}
    for _ in range(args.runs):
        for label, command in CASES.items():
            samples[label].append(child(command, env))
    medians = {
        label: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for label, runs in samples.items()
    }
    base_wall, base_cpu = medians["python -c pass"]
    print(f"{args.runs} runs each, medians")
    print(f"{'case':<20} {'wall s':>7} {'over':>7} {'cpu s':>7} {'over':>7}  target (wall over baseline)")
    figures: dict[str, dict[str, float | bool | None]] = {}
    for label, (wall, cpu) in medians.items():
        target = TARGETS.get(label)
        over_wall, over_cpu = wall - base_wall, cpu - base_cpu
        met = None if target is None else over_wall <= target
        figures[label] = {
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "wall_over_baseline_s": round(over_wall, 3),
            "cpu_over_baseline_s": round(over_cpu, 3),
            "target_over_s": target,
            "met": met,
        }
        goal = "" if target is None else f"<= {target} s: {'met' if met else 'NOT met'}"
        print(f"{label:<20} {wall:7.3f} {over_wall:7.3f} {cpu:7.3f} {over_cpu:7.3f}  {goal}")
    print(json.dumps({"runs": args.runs, "cases": figures}))


if __name__ == "__main__":
    main()
