"""Wall time and peak RSS of counting FLOPs + params for the whole zoo (resfam-compare's path),
beside the peak RSS of counting the largest single model alone.

    python benchmarks/zoo_count.py
"""
from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time

CHILD = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import torch
import resfam
models = sys.argv[1:] or None
start = time.perf_counter()
rows = resfam.compare(models, params=True, flops=True)
wall = time.perf_counter() - start
print(json.dumps({"models": len(rows), "failed": sum(1 for r in rows if r.get("error")),
                  "wall_s": round(wall, 1), "threads": torch.get_num_threads(),
                  "torch": torch.__version__,
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def run(models: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, *models], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    import resfam

    # the largest build by parameters: its count alone sets the floor for the sweep's memory
    largest = max(resfam.list_models(),
                  key=lambda n: sum(p.numel() for p in resfam.build(n).parameters()))
    zoo, one = run([]), run([largest])
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {zoo['torch']}, "
          f"{zoo['threads']} threads")
    print(f"| what | models | wall s | peak RSS MiB |\n|---|---|---|---|")
    print(f"| whole zoo, params + GMACs + other ops | {zoo['models']} | {zoo['wall_s']} | {zoo['peak_rss_mib']} |")
    print(f"| largest alone ({largest}) | 1 | {one['wall_s']} | {one['peak_rss_mib']} |")
    if zoo["failed"]:
        print(f"{zoo['failed']} models failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
