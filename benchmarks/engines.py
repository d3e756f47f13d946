"""Every family on every inference engine, and resfam's paths against ONNX Runtime.

    python benchmarks/engines.py                                   # one network per family
    python benchmarks/engines.py resnet50 res2net50_26w_4s --batch-sizes 1 8 --runs 9

For each network and batch size, in ``--processes`` fresh processes: the network is deployed on
every installed engine (``resfam.deploy``, each checked against eager on the input), then all
engines and a second ONNX Runtime session (the control: what "the same speed" measures as) are
timed alternately in one process, forward then reverse order each round
(``resfam.comparison.timing.alternate_many``), together with resfam's best path,
``resfam.deploy(model, "auto")`` over resfam's own path and the ONNX engines (it times them on the
input and keeps the fastest; its own choice, made before these rounds, is what is timed). A row
gives each engine's median ratio to eager
over every round (all processes pooled: the ratio of two times in the same round, as
benchmarks/vs_reference.py), the achieved GFLOP/s of the fastest engine against the ceiling
measured in the same process (``resfam.engines.ceiling``), resfam's own path / ONNX Runtime
and resfam's best path / ONNX Runtime (the engine ``auto`` chose in each process), each with the
spread of the processes' own medians, and the control. ``--op-profile`` adds the top aten ops
of resfam's path for each row where it is slower than ONNX Runtime.

Threads: one by default, as benchmarks/vs_reference.py (see there why).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics

BEST_OF = ("resfam", "onnxruntime", "openvino")  # resfam's best path: deploy(model, "auto") over these
FAMILY_NETS = ["resnet50", "resnet18", "resnext50_32x4d", "wide_resnet50_2", "res2net50_26w_4s",
               "iresnet50", "highway_resnet50", "plain34", "resnetv2_50", "resnetv2_50x1_bit",
               "seresnet50", "ecaresnet50d", "resnetaa50d", "skresnet50", "resnest50d",
               "resnetrs50", "se_res2net50_26w_4s", "resnet56"]


def measure(name: str, args, k: int) -> dict:
    import torch

    import resfam
    from resfam.comparison.timing import alternate_many
    from resfam.engines.ceiling import measured_ceiling
    from resfam.engines.deployment import installed
    from resfam.engines.runners import RUNNERS, one_export

    torch.set_num_threads(args.threads)
    model = resfam.build(name).eval()
    side = model.pretrained_cfg["input_size"][-1] if side_of(model) < 64 else args.img_size
    engines = [e for e in installed(args.engines) if e in RUNNERS]
    ceiling = measured_ceiling("cpu")
    out = {"ceiling": ceiling.gflops, "engines": engines, "gflops": gflops(name, side)}
    for batch in args.batch_sizes:
        x = torch.randn(batch, 3, side, side)
        best = None
        with one_export():  # one ONNX graph for ONNX Runtime, its control and OpenVINO
            deployed = {e: resfam.deploy(model, e, example=x) for e in engines}
            if "onnxruntime" in deployed:  # the control: a second session of the same engine
                control = resfam.deploy(model, "onnxruntime", example=x)
            candidates = [e for e in BEST_OF if e in engines]
            if args.best and "resfam" in candidates:
                best = resfam.deploy(model, "auto", example=x, candidates=candidates)
        fns = [(lambda d: (lambda: d.runner(x)(x)))(d) for d in deployed.values()]
        if "onnxruntime" in deployed:
            fns.append(lambda: control.runner(x)(x))
        if best is not None:
            fns.append(lambda: best.runner(x)(x))
        order = fns if k % 2 == 0 else fns[::-1]  # odd processes start from the other end
        times = alternate_many(order, x.device, args.warmup, args.runs)
        times = list(times[::-1] if k % 2 else times)
        samples = {e: t.samples for e, t in zip(engines, times)}
        if best is not None:
            samples["best"] = times.pop().samples
        if "onnxruntime" in deployed:
            samples["control"] = times[-1].samples
        profile = None
        if args.op_profile and "onnxruntime" in deployed and "resfam" in deployed and \
                statistics.median(samples["resfam"]) > statistics.median(samples["onnxruntime"]):
            profile = op_profile(deployed["resfam"], x)
        out[batch] = {"samples": samples, "profile": profile, "chose": best and best.engine,
                      "errors": {e: d.error for e, d in deployed.items()}}
    return out


def side_of(model) -> int:
    return model.pretrained_cfg["input_size"][-1]


def gflops(name: str, side: int) -> float:
    """2 x (MACs + other ops) per image at ``side``, from the analytic counter."""
    import resfam
    from resfam.comparison.analytic import AnalyticCounter

    counts = AnalyticCounter().count_spec(resfam.get_spec(name), side)[0]
    return 2 * (counts.macs + counts.other) / 1e9


def op_profile(deployed, x, top: int = 6) -> str:
    import torch
    from torch.profiler import profile

    run = deployed.runner(x)
    with torch.inference_mode(), profile() as prof:
        for _ in range(3):
            run(x)
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    total = sum(e.self_cpu_time_total for e in prof.key_averages()) or 1
    return ", ".join(f"{e.key} {100 * e.self_cpu_time_total / total:.0f}%" for e in rows)


def ratios(base, other) -> list[float]:
    return [a / b for a, b in zip(base, other)]


def rankings(table: list[tuple[str, int, dict]], engines: list[str], img_size: int) -> list[str]:
    """For each batch size: the networks ordered by achieved GFLOP/s (img/s x 2 (MACs + other
    ops) per image: how well an engine serves a family's arithmetic, whatever its size) on each
    engine, and Kendall's tau between eager's order and each engine's (1: the same order).
    ``table``: (model, batch, {engine: img/s}) rows."""
    import resfam
    from scipy.stats import kendalltau

    per_image = {}
    for name in {m for m, _, _ in table}:
        native = resfam.get_spec(name).input_size
        per_image[name] = gflops(name, native if native < 64 else img_size)
    lines = []
    for batch in sorted({b for _, b, _ in table}):
        rows = [(m, {e: v * per_image[m] for e, v in speeds.items()}) for m, b, speeds in table
                if b == batch]
        eager = [rates["eager"] for _, rates in rows]
        for engine in engines:
            order = sorted(rows, key=lambda r: -r[1][engine])
            tau = kendalltau(eager, [rates[engine] for _, rates in rows]).statistic
            lines.append(f"batch {batch}, {engine} (Kendall tau vs eager {tau:.2f}): "
                         + " > ".join(f"{m} {r[engine]:.0f}" for m, r in order))
    return lines


def parse_table(path: str) -> tuple[list[tuple[str, int, dict]], list[str]]:
    """A previous run's printed table (``--from-table``): (model, batch, {engine: img/s})."""
    table, engines = [], []
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:2] == ["model", "batch"]:
            engines = [c[:-2] for c in cells[3:] if c.endswith(" x")]
        elif engines and len(cells) > 4 and cells[1].isdigit():
            eager = float(cells[2])
            table.append((cells[0], int(cells[1]),
                          {e: eager * float(cells[3 + i]) for i, e in enumerate(engines)}))
    return table, engines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*")
    p.add_argument("--engines", nargs="+", default=["eager", "resfam", "compile", "onnxruntime", "openvino"])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--processes", type=int, default=2, help="fresh processes per network")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-best", dest="best", action="store_false",
                   help="leave out resfam's best path (deploy 'auto', which builds every candidate again)")
    p.add_argument("--op-profile", action="store_true",
                   help="the top ops of resfam's path where it is slower than ONNX Runtime")
    p.add_argument("--malloc-tuned", action="store_true",
                   help="run the measuring processes with glibc's malloc keeping freed memory "
                   "(MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_): how much of "
                   "a gap is page faults on each forward's fresh activations")
    p.add_argument("--from-table", metavar="LOG", help="print the rankings of a previous run's "
                   "output instead of measuring")
    args = p.parse_args()
    if args.from_table:
        table, engines = parse_table(args.from_table)
        print("\n".join(rankings(table, engines, args.img_size)))
        return
    names = args.models or FAMILY_NETS
    if args.malloc_tuned:  # read by glibc when each spawned process starts
        os.environ.update(MALLOC_MMAP_THRESHOLD_=str(1 << 32), MALLOC_TRIM_THRESHOLD_=str(1 << 36),
                          MALLOC_TOP_PAD_=str(1 << 30))
    import torch

    print(f"torch {torch.__version__}, cpu, {args.threads} threads, eval + inference_mode, "
          f"{args.runs} alternating rounds (forward, then reverse order) after {args.warmup} warm-up, "
          f"in each of {args.processes} fresh processes; each engine: median over every round of "
          "eager's time / its time; control: ONNX Runtime against a second session of itself"
          + ("; glibc malloc keeping freed memory (--malloc-tuned)" if args.malloc_tuned else ""))
    ctx = mp.get_context("spawn")
    lines, notes, own_vs_ort, best_vs_ort, table = [], [], [], [], []
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        for name in names:
            runs = [pool.apply(measure, (name, args, k)) for k in range(args.processes)]
            engines = runs[0]["engines"]
            if not lines:
                ceilings = [r["ceiling"] for r in runs]
                print(f"ceiling (measured in each process, best of mm / conv kernels): "
                      f"{min(ceilings):.0f}-{max(ceilings):.0f} GFLOP/s")
                head = " | ".join(f"{e} x" for e in engines)
                print(f"| model | batch | eager img/s | {head} | best GFLOP/s (% of ceiling) | "
                      "resfam / onnxruntime | spread | best path / onnxruntime | spread | chose "
                      "| control |")
                print("|---|---|---|" + "---|" * len(engines) + "---|---|---|---|---|---|---|")
                lines.append(True)
            for batch in args.batch_sizes:
                per = [r[batch] for r in runs]
                pooled = {e: [t for r in per for t in r["samples"][e]] for e in per[0]["samples"]}
                eager = pooled["eager"]
                x = {e: statistics.median(ratios(eager, pooled[e])) for e in engines}
                img_s = batch / (statistics.median(eager) / 1e3)
                best = max(x, key=x.get)
                rate = runs[0]["gflops"] * batch / (statistics.median(pooled[best]) / 1e3)
                ceiling = statistics.median(r["ceiling"] for r in runs)
                cells = " | ".join(f"{x[e]:.2f}" for e in engines)
                table.append((name, batch, {e: img_s * x[e] for e in engines}))
                if "onnxruntime" in x and "resfam" in x:
                    vs = statistics.median(ratios(pooled["onnxruntime"], pooled["resfam"]))
                    spread = [statistics.median(ratios(r["samples"]["onnxruntime"], r["samples"]["resfam"]))
                              for r in per]
                    control = statistics.median(ratios(pooled["onnxruntime"], pooled["control"]))
                    own_vs_ort.append(vs)
                    tail = f"{vs:.3f} | {min(spread):.2f}-{max(spread):.2f} | "
                    if "best" in pooled:
                        bvs = statistics.median(ratios(pooled["onnxruntime"], pooled["best"]))
                        bspread = [statistics.median(ratios(r["samples"]["onnxruntime"], r["samples"]["best"]))
                                   for r in per]
                        chose = "/".join(sorted({r["chose"] for r in per}))
                        best_vs_ort.append(bvs)
                        tail += f"{bvs:.3f} | {min(bspread):.2f}-{max(bspread):.2f} | {chose} | "
                    else:
                        tail += "- | - | - | "
                    tail += f"{control:.3f}"
                    for r in per:
                        if r["profile"]:
                            notes.append(f"{name} batch {batch}, resfam's path: {r['profile']}")
                            break
                else:
                    tail = "- | - | - | - | - | -"
                flag = " (above the ceiling: the ceiling misses a kernel)" if rate > ceiling else ""
                print(f"| {name} | {batch} | {img_s:.2f} | {cells} | {rate:.0f} ({100 * rate / ceiling:.0f}%)"
                      f"{flag} | {tail} |", flush=True)
    for label, values in (("resfam's own path", own_vs_ort), ("resfam's best path", best_vs_ort)):
        if values:
            print(f"\n{label} / onnxruntime: median {statistics.median(values):.3f}, min "
                  f"{min(values):.3f} over {len(values)} rows, >= 1.00 in "
                  f"{sum(v >= 1.0 for v in values)}")
    for note in notes:
        print(note)
    print("\n".join(rankings(table, engines, args.img_size)))


if __name__ == "__main__":
    main()
