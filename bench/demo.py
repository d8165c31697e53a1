"""Time `digest demo` on a fresh home (first and second run) against bare command start-up.

Prints a table and ends with one JSON line of the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    home = Path(tempfile.mkdtemp()) / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"DIGEST_HOME": str(home)}
    command = [sys.executable, "-m", "digest.cli"]
    baseline = min(timed([*command, "--help"], env) for _ in range(3))
    first = timed([*command, "demo", "--json"], env)
    second = timed([*command, "demo", "--json"], env)
    print(f"bare start-up (digest --help): {baseline:6.2f} s")
    print(f"demo, first run:               {first:6.2f} s  ({first / baseline:5.1f}x start-up)")
    print(f"demo, second run:              {second:6.2f} s  ({second / baseline:5.1f}x start-up)")
    print(
        json.dumps(
            {
                "baseline_s": round(baseline, 3),
                "demo_first_s": round(first, 3),
                "demo_second_s": round(second, 3),
                "first_ratio": round(first / baseline, 2),
                "under_a_minute": first < 60 and second < 60,
            }
        )
    )


if __name__ == "__main__":
    main()
