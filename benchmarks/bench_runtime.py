"""Benchmark: measured training step time against activations, FLOPs and params (the paper's Appendix D, here).

    python benchmarks/bench_runtime.py [--sizes micro,tiny] [--steps 6] [--threads 1] [--device cpu] [--search]

Every built-in model and zoo stem (vit_<stem>_<size>) and the size's RegNetY, at micro and tiny: params, GMACs,
activations (conv and matmul outputs per image, models.complexity) and the median of `--steps` timed training steps
(AdamW, cross-entropy, forward + backward + update, on random images of the size's input) after 3 warm-up steps, at
a fixed batch per size. Then Pearson's r of step time with activations, GMACs and params, per size and pooled over
the sizes as time per image. The paper (Xiao et al. 2021, Appendix D; 8 V100, ImageNet): r 0.93 / 0.75 / 0.71.

On the CPU the step's wall time includes waiting while other processes hold the cores (a shared machine: a niced
run measured 2.8 s for a 33 ms step); the process's CPU time does not, so on the CPU the correlations use the median
CPU time (one thread: the step's own compute) and the wall median is printed beside it. On CUDA: wall time, synced.

`--search` prints instead the grid that chose the micro and tiny RegNetY (models/reference.py): pycls's
RegNetY-200MF with widths × m and depths × k, the GMACs of each at the size's input against vit_p_<size>'s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from timm.models.regnet import RegNetCfg

from robustbench_vit.models import ModelSpec, build_model, model_complexity, regnety_name, size_info
from robustbench_vit.models.complexity import count_costs, patchify_gmacs
from robustbench_vit.models.reference import AnyNetY, stage_strides
from robustbench_vit.models.stems import registered_stems
from robustbench_vit.train.optim import resolve_device
from robustbench_vit.train.steptime import WARM_STEPS, time_step

BATCH = {"micro": 64, "tiny": 8}  # fixed per size: tiny's 0.23 GMACs per image keep a CPU step near 0.3 s
PAPER_R = {"activations": 0.93, "gmacs": 0.75, "params": 0.71}
BASE_200MF = ((1, 1, 4, 7), (24, 56, 152, 368), 8, 32)  # pycls DDS RegNetY-200MF: depths, widths, group width, stem


def model_names(size: str) -> list[str]:
    """Every registered stem's model at `size` (patchify and conv first), then the size's RegNetY."""
    keys = {"patchify": "p", "conv": "c"}
    return [f"vit_{keys.get(stem, stem)}_{size}" for stem in registered_stems()] + [regnety_name(size)]


def pearson(a, b) -> float:
    """Pearson's r of two sequences."""
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


def measure(sizes: list[str], steps: int, device: torch.device) -> list[dict]:
    """One row per model: size, name, params, GMACs, activations, batch, step seconds (CPU time on the CPU, else wall)
    and wall seconds; printed as it is measured."""
    rows = []
    print(f"{'model':<26} {'params M':>9} {'GMACs':>9} {'acts M':>8} {'batch':>5} {'wall ms':>9} {'step ms':>9} "
          f"{'ms/img':>8}")
    for size in sizes:
        for name in model_names(size):
            spec, batch = ModelSpec.from_name(name), BATCH.get(size, 32)
            cx = model_complexity(spec)
            t = time_step(spec, batch, steps, device=device)
            wall, cpu = t.wall, t.cpu
            row = {"size": size, "name": name, "params": cx.params, "gmacs": cx.gmacs, "activations": cx.activations,
                   "batch": batch, "wall": wall, "step": cpu if device.type == "cpu" else wall}
            rows.append(row)
            print(f"{name:<26} {cx.params / 1e6:>9.3f} {cx.gmacs:>9.4g} {cx.activations / 1e6:>8.4g} {batch:>5} "
                  f"{1000 * wall:>9.2f} {1000 * row['step']:>9.2f} {1000 * row['step'] / batch:>8.3f}", flush=True)
    return rows


def correlations(rows: list[dict]) -> None:
    """Pearson's r of step time with activations, GMACs and params: per size, and pooled as time per image."""
    print(f"\nPearson r of step time with:  {'activations':>11} {'GMACs':>7} {'params':>7}   (n)")
    groups = {s: [r for r in rows if r["size"] == s] for s in dict.fromkeys(r["size"] for r in rows)}
    if len(groups) > 1:
        groups["pooled (time per image)"] = rows
    for label, g in groups.items():
        t = [r["step"] / r["batch"] for r in g]
        rs = [pearson(t, [r[k] for r in g]) for k in PAPER_R]
        print(f"  {label:<27} {rs[0]:>11.2f} {rs[1]:>7.2f} {rs[2]:>7.2f}   ({len(g)})")
    print(f"  {'paper (Appendix D)':<27} {PAPER_R['activations']:>11.2f} {PAPER_R['gmacs']:>7.2f} "
          f"{PAPER_R['params']:>7.2f}")


def search(size: str) -> None:
    """The RegNetY grid at `size`: widths × m (quantized to 8), depths × k, GMACs against vit_p_<size>'s."""
    info, target = size_info(size), patchify_gmacs(size)
    depths0, widths0, group, stem0 = BASE_200MF
    print(f"\n{size}: vit_p_{size} {target:.4g} GMACs; RegNetY-200MF × (m widths, k depths), strides "
          f"{stage_strides(info.img_size)}")
    found = []
    for k in (0.5, 1.0):
        for m in [i / 8 for i in range(2, 25)]:
            widths = tuple(max(8, round(w * m / 8) * 8) for w in widths0)
            depths = tuple(max(1, round(d * k)) for d in depths0)
            stem = max(8, round(stem0 * m / 8) * 8)
            with torch.device("meta"):
                model = AnyNetY(RegNetCfg(group_size=group, se_ratio=0.25, stem_width=stem),
                                (depths, widths, stage_strides(info.img_size)), in_chans=info.in_chans,
                                num_classes=info.num_classes)
            gmacs = count_costs(model, info.img_size, info.in_chans)[0]
            found.append((abs(gmacs - target), m, k, depths, widths, stem, sum(p.numel() for p in model.parameters()),
                          gmacs))
    for off, m, k, depths, widths, stem, params, gmacs in sorted(found)[:5]:
        print(f"  m {m:<6g} k {k:<4g} depths {depths} widths {widths} stem {stem}: {params / 1e6:.3f} M params, "
              f"{gmacs:.4g} GMACs ({gmacs / target:.2f}×)")


def main() -> None:
    """Measure and print (or --search)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="micro,tiny")
    p.add_argument("--steps", type=int, default=6, help="timed steps per model, after 3 warm-up steps")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: steadier on shared cores)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--search", action="store_true", help="print the micro / tiny RegNetY search grid instead")
    args = p.parse_args()
    sizes = args.sizes.split(",")
    if args.search:
        for size in sizes:
            search(size)
        return
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}: device {device}, {args.threads} thread(s), median of {args.steps} "
          f"steps after {WARM_STEPS} warm-up, batch {', '.join(f'{s} {BATCH.get(s, 32)}' for s in sizes)}; step: "
          f"{'process CPU time' if device.type == 'cpu' else 'wall time'}")
    started, cpu = time.perf_counter(), time.process_time()
    correlations(measure(sizes, args.steps, device))
    print(f"\n{time.perf_counter() - started:.0f} s wall, {time.process_time() - cpu:.0f} s CPU")


if __name__ == "__main__":
    main()
