"""Start-up time of the commands a user types first: wall time of each as a fresh process.

    python benchmarks/startup.py [--repeats 5]

Each command runs ``--repeats`` times, alternating with a bare ``python -c pass`` (the control:
the interpreter's own start-up on this machine); the table gives the median of each, and the
budget the CLIs aim at (0.5 s: what a ``--help`` may cost before it feels slow).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

BIN = os.path.dirname(sys.executable)
COMMANDS = [
    [sys.executable, "-c", "pass"],
    [sys.executable, "-c", "import resfam"],
    [os.path.join(BIN, "resfam-compare"), "--help"],
    [os.path.join(BIN, "resfam-compare"), "--version"],
    [os.path.join(BIN, "resfam-compare"), "--list", "res2net*"],
    [os.path.join(BIN, "resfam-compare"), "--list", "--family", "highway"],
    [os.path.join(BIN, "resfam-train"), "--help"],
    [os.path.join(BIN, "resfam-probe"), "--help"],
    [sys.executable, "-m", "resfam", "--version"],
    [sys.executable, "-c", "import resfam, torch"],  # what the lazy imports save: torch alone
]
BUDGET_S = 0.5


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    times: dict[int, list[float]] = {i: [] for i in range(len(COMMANDS))}
    for _ in range(args.repeats):
        for i, cmd in enumerate(COMMANDS):  # alternated: a busy moment hits every command
            times[i].append(wall(cmd))
    print(f"median of {args.repeats} fresh processes each; budget {BUDGET_S} s for the CLI rows")
    print("| command | median s | within budget |\n|---|---|---|")
    for i, cmd in enumerate(COMMANDS):
        shown = " ".join(["python" if c == sys.executable else os.path.basename(c) for c in cmd])
        median = statistics.median(times[i])
        print(f"| `{shown}` | {median:.2f} | {'yes' if median < BUDGET_S else 'no'} |")


if __name__ == "__main__":
    main()
