"""Thousands of hostile inputs, each in a worker process with a memory and a time limit.

    python benchmarks/fuzz.py --cases 3000            # 600 of each kind, 2 workers
    python benchmarks/fuzz.py --kinds yaml --cases 200 --seed 1000

Cases come from tests/fuzz_cases.py (the same generators the property-based test uses; a case
is rebuilt from its kind and seed, so every line of the report can be re-run). A worker runs
cases one after another under ``RLIMIT_AS`` (the address space after imports plus
``--memory-gib``, default 4); a case that has not answered after
``--timeout`` seconds (default 30) is a hang: the worker is killed and replaced. Outcomes:

- built: the input was valid and worked, and the oracle found it built what was asked;
- resfam error: a ResfamError (the promised outcome for bad input);
- silent: accepted, but not what was asked (a coercion, a key given twice, a tensor that did not
  load as the file holds it, a report missing rows): a bug;
- half-load: a failed or interrupted checkpoint load left the model neither as it was nor fully
  loaded: a bug;
- damaged: an output interrupted at a random moment is neither old nor complete: a bug;
- escaped: any other exception (a bug), printed with the seed to reproduce it;
- hang: no answer within the time limit (a bug);
- crashed: the worker died (a bug, or the memory limit hit outside Python).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import select
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

OUTCOMES = ("built", "resfam error", "silent", "half-load", "damaged", "escaped", "hang", "crashed")
BAD = OUTCOMES[2:]


def worker(memory_bytes: int) -> None:
    """Read ``{"kind", "seed"}`` lines on stdin, answer one JSON line each on stdout."""
    import random
    import warnings

    warnings.simplefilter("ignore")
    out = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the CLI cases print
    import timm  # noqa: F401 - imported before the limit: the limit is for the cases
    import torchvision  # noqa: F401

    from fuzz_cases import DamagedFile, HalfLoaded, SilentAcceptance, make_case, run_case
    from resfam.comparison import cli  # noqa: F401

    limit = _address_space() + memory_bytes  # torch's CUDA build maps ~3.7 GiB on import alone
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        job = json.loads(line)
        start = time.perf_counter()
        try:
            outcome, error = run_case(job["kind"], make_case(job["kind"], random.Random(job["seed"]))), ""
        except BaseException as e:  # noqa: BLE001 - every other exception is what we look for
            frame = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
            where = f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
            outcome = {SilentAcceptance: "silent", HalfLoaded: "half-load",
                       DamagedFile: "damaged"}.get(type(e), "escaped")
            error = f"{type(e).__name__}{where}: {str(e)[:300]}"
        out.write(json.dumps({"outcome": outcome, "error": error,
                              "seconds": time.perf_counter() - start}) + "\n")
        out.flush()


def _address_space() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


class Worker:
    def __init__(self, memory_bytes: int):
        self.memory_bytes = memory_bytes
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker",
                                      "--memory-gib", str(self.memory_bytes / 2 ** 30)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     stderr=subprocess.DEVNULL)
        self._read(300)  # imports

    def _read(self, timeout: float):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {}

    def run(self, kind: str, seed: int, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(json.dumps({"kind": kind, "seed": seed}) + "\n")
        self.proc.stdin.flush()
        answer = self._read(timeout)
        if answer is None:
            self.kill()
            return {"outcome": "hang", "error": f"no answer in {timeout} s", "seconds": timeout}
        if not answer:
            code = self.proc.wait()
            self.proc = None
            return {"outcome": "crashed", "error": f"worker exited with {code}", "seconds": 0.0}
        return answer

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=3000, help="cases in all, split evenly over kinds")
    p.add_argument("--kinds", nargs="*", default=None, help="spec yaml args checkpoint cli output "
                   "api probe_cli train_cli")
    p.add_argument("--seed", type=int, default=0, help="first seed of each kind")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before a case is a hang")
    p.add_argument("--memory-gib", type=float, default=4.0, help="address space a worker may add after its imports")
    p.add_argument("--json", help="also write every outcome to this file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(int(args.memory_gib * 2 ** 30))
        return 0
    from tabulate import tabulate

    from fuzz_cases import KINDS

    kinds = args.kinds or list(KINDS)
    per_kind = max(1, args.cases // len(kinds))
    jobs = [(k, args.seed + i) for i in range(per_kind) for k in kinds]
    results: list[tuple[str, int, dict]] = []
    lock = threading.Lock()
    start = time.perf_counter()

    def drain():
        w = Worker(int(args.memory_gib * 2 ** 30))
        try:
            while True:
                with lock:
                    if not jobs:
                        return
                    kind, seed = jobs.pop(0)
                answer = w.run(kind, seed, args.timeout)
                with lock:
                    results.append((kind, seed, answer))
                    if answer["outcome"] not in ("built", "resfam error"):
                        print(f"{answer['outcome']}: {kind} seed {seed}: {answer['error']}", flush=True)
                    if len(results) % 250 == 0:
                        print(f"... {len(results)} cases, {time.perf_counter() - start:.0f} s", flush=True)
        finally:
            w.kill()

    threads = [threading.Thread(target=drain) for _ in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    counts = collections.Counter((k, a["outcome"]) for k, _, a in results)
    slowest = collections.defaultdict(float)
    for k, _, a in results:
        slowest[k] = max(slowest[k], a["seconds"])
    rows = [[k, sum(counts[(k, o)] for o in OUTCOMES)] + [counts[(k, o)] for o in OUTCOMES]
            + [f"{slowest[k]:.2f}"] for k in kinds]
    rows.append(["all", len(results)] + [sum(counts[(k, o)] for k in kinds) for o in OUTCOMES]
                + [f"{max(slowest.values()):.2f}"])
    print(f"\nfuzz: {len(results)} cases, seeds {args.seed}..{args.seed + per_kind - 1} per kind, "
          f"{args.workers} workers, {args.memory_gib:g} GiB / {args.timeout:g} s per case, "
          f"{wall:.0f} s wall")
    print(tabulate(rows, headers=["kind", "tried", *OUTCOMES, "slowest s"], tablefmt="github"))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([{"kind": k, "seed": s, **a} for k, s, a in results], f, indent=1)
    bad = sum(counts[(k, o)] for k in kinds for o in BAD)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
