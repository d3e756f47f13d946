"""Wall time and peak RSS of counting FLOPs + params for the whole zoo (resfam-compare's path):
with the analytic counter (its default: no model built) and with fvcore (every model built,
traced and freed in turn), beside fvcore's count of the largest single model alone.

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
counter, models = sys.argv[1], sys.argv[2:] or None
start = time.perf_counter()
rows = resfam.compare(models, params=True, flops=True, counter=counter)
wall = time.perf_counter() - start
print(json.dumps({"models": len(rows), "failed": sum(1 for r in rows if r.get("error")),
                  "wall_s": round(wall, 1), "threads": torch.get_num_threads(),
                  "torch": torch.__version__,
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def run(counter: str, models: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, counter, *models], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    import resfam
    from resfam.comparison.analytic import tally

    # the largest build by parameters: its count alone sets the floor for the sweep's memory
    largest = max(resfam.list_models(), key=lambda n: tally(resfam.get_spec(n)).params)
    zoo, fv, one = run("analytic", []), run("fvcore", []), run("fvcore", [largest])
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {zoo['torch']}, "
          f"{zoo['threads']} threads")
    print(f"| what | models | wall s | peak RSS MiB |\n|---|---|---|---|")
    print(f"| whole zoo, params + GMACs + other ops, analytic | {zoo['models']} | {zoo['wall_s']} | {zoo['peak_rss_mib']} |")
    print(f"| whole zoo, the same with fvcore | {fv['models']} | {fv['wall_s']} | {fv['peak_rss_mib']} |")
    print(f"| largest alone with fvcore ({largest}) | 1 | {one['wall_s']} | {one['peak_rss_mib']} |")
    if zoo["failed"] or fv["failed"]:
        print(f"{zoo['failed'] + fv['failed']} rows failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
