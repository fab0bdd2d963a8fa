"""Benchmark: how busy the studies keep a GPU (trials per GPU, achieved bf16 FLOP/s, time to the first step).

    python benchmarks/bench_gpu.py           # on a GPU: the figures below; without one: the smoke run
    python benchmarks/bench_gpu.py --smoke   # the seconds-long smoke run anywhere (what the tests run)

1. Trials per hour per GPU for the cifar preset's tiny models (vit_p_tiny and vit_c_tiny, batch 256, bf16,
   augmentation on the device) at K = 1, 2, 4, 8 trials per GPU. Each K runs a real study through the local
   executor (K worker processes on one GPU, SQLite storage, checkpoints) on synthetic CIFAR-shaped pickles
   (random pixels: speed does not depend on them), 2·K trials so every worker trains two. Ratios are against
   K = 1 measured in the same run.
2. Achieved bf16 TFLOP/s of the trainer's training step (timm ViT, torch.compile, AdamW, bf16 autocast) for
   vit_c_1gf and vit_c_4gf at 224 px on random batches, and its fraction of the device's bf16 matmul peak as
   measured here (8192³ products). FLOPs: 2 per multiply-add, a training step = 3× the forward pass.
3. Seconds from a trial's start to its first optimizer step (CIFAR data onto the device, model, compile), in a
   fresh process twice: the first with an empty compile cache, the second with it warm.

Targets on a GPU: (1) the best K ≥ 4× the K = 1 figure; (2) ≥ 40% of the bf16 matmul peak at 4GF;
(3) < 10 s to the first step with a warm compile cache. The smoke run shrinks everything (K = 1, 2 on a CPU
standing in for one GPU, 20 images, batch 2 at 224 px, no compile): every path runs, its numbers say nothing
about a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_trainer import matmul_gflops, sync

from robustbench_vit.data.cifar import write_synthetic
from robustbench_vit.models import ModelSpec, build_model, model_complexity
from robustbench_vit.study import RunOptions, run_study
from robustbench_vit.study.gpus import STANDIN_ENV
from robustbench_vit.study.spec import parse_spec
from robustbench_vit.train import TrialConfig, run_trial
from robustbench_vit.train.optim import autocast, build_optimizer

FULL = {"images": 10_000, "epochs": 2, "batch": 256, "ks": (1, 2, 4, 8), "big_batch": 256, "steps": 20}
SMOKE = {"images": 4, "epochs": 1, "batch": 8, "ks": (1, 2), "big_batch": 2, "steps": 2}


def trials_per_hour(k: int, size: dict, *, data_root: Path, work: Path, smoke: bool) -> float:
    """Run 2·k tiny CIFAR trials with k workers sharing the GPU; trials per hour of wall time."""
    lrs = [float(v) for v in np.geomspace(3e-4, 3e-3, k).round(6)]
    spec = parse_spec({
        "name": f"bench_gpu_k{k}", "models": ["vit_p_tiny", "vit_c_tiny"], "dataset": "cifar10",
        "data_root": str(data_root), "space": {"lr": {"values": lrs}}, "design": {"kind": "grid"},
        "train": {"epochs": size["epochs"], "batch_size": size["batch"], "warmup_epochs": 0, "augment": True,
                  "amp": True, "device": "auto", "threads": 1 if smoke else None}}, "bench_gpu.py")
    t = time.perf_counter()
    summary = run_study(spec, RunOptions(runs_dir=work / f"k{k}", executor="local", trials_per_gpu=k),
                        progress=False)
    wall = time.perf_counter() - t
    if summary.done != 2 * k or summary.counts and any(c["failed"] for c in summary.counts.values()):
        raise SystemExit(f"K={k}: {summary.counts} (logs: {work / f'k{k}'})")
    return 2 * k * 3600 / wall


def step_tflops(name: str, device: torch.device, size: dict, *, smoke: bool) -> float:
    """Achieved TFLOP/s of `size['steps']` timed training steps of `name` at 224 px (after 3 warm-up steps)."""
    spec = ModelSpec.from_name(name)
    cx = model_complexity(spec)
    model = build_model(spec, 1000, depth=cx.depth).to(device)
    forward = model if smoke else torch.compile(model)
    opt = build_optimizer(model, TrialConfig(model=spec))
    x = torch.randn(size["big_batch"], 3, 224, 224, device=device)
    y = torch.randint(0, 1000, (size["big_batch"],), device=device)

    def step() -> None:
        with autocast(device, True):
            loss = F.cross_entropy(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(size["steps"]):
        step()
    sync(device)
    return 6 * cx.gmacs * 1e9 * size["big_batch"] * size["steps"] / (time.perf_counter() - t) / 1e12


def first_step_seconds(config: TrialConfig, cache: Path) -> float:
    """A fresh process trains `config` for one epoch; seconds from its trial start to the first step."""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, __file__, "--first-step", config.model_dump_json()], env=env,
                         capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def report(rates: dict[int, float], flops: dict[str, float], peak: float, starts: tuple[float, float], *,
           device: str, smoke: bool) -> None:
    """Print the three tables, with ratios to K = 1 and the targets."""
    print(f"device: {device}{'  (smoke run: shrunken sizes, numbers say nothing about a GPU)' if smoke else ''}")
    print("\ntrials per GPU   trials/hour/GPU   vs K=1")
    for k, r in rates.items():
        print(f"K = {k:<13}{r:>15.1f}   {r / rates[1]:>5.2f}x")
    best = max(rates.values()) / rates[1]
    print(f"best: {best:.2f}x K=1 (target >= 4x on a GPU)")
    unit = "TFLOP/s bf16" if not smoke else "TFLOP/s fp32 (CPU)"
    print(f"\nmatmul peak measured here: {peak:.2f} {unit}")
    for name, f in flops.items():
        print(f"{name:<12} {f:8.3f} {unit} = {f / peak:6.1%} of peak (target at 4GF: >= 40%)")
    print(f"\nfirst step after trial start: {starts[0]:.2f} s cold compile cache, {starts[1]:.2f} s warm "
          f"(target warm: < 10 s)")


def main(argv: list[str] | None = None) -> None:
    """Measure the three sections (smoke mode without a GPU) and print them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="seconds-long run of every path (default without a GPU)")
    ap.add_argument("--first-step", metavar="CONFIG_JSON", help=argparse.SUPPRESS)  # the child of section 3
    args = ap.parse_args(argv)
    if args.first_step:
        print(run_trial(TrialConfig.model_validate_json(args.first_step)).first_step_seconds)
        return
    smoke = args.smoke or not torch.cuda.is_available()
    size, device = (SMOKE if smoke else FULL), torch.device("cpu" if smoke else "cuda")
    if smoke:  # the CPU stands in for one GPU, so the local executor plans K workers per "GPU"
        os.environ[STANDIN_ENV] = "1"
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        work = Path(tmp)
        write_synthetic(work / "data", "cifar10", n=size["images"])
        rates = {k: trials_per_hour(k, size, data_root=work / "data", work=work, smoke=smoke) for k in size["ks"]}
        flops = {name: step_tflops(name, device, size, smoke=smoke) for name in ("vit_c_1gf", "vit_c_4gf")}
        peak = matmul_gflops(device, n=512 if smoke else 8192, dtype=torch.float32 if smoke else torch.bfloat16) / 1e3
        config = TrialConfig(model=ModelSpec.from_name("vit_c_tiny"), dataset="cifar10", data_root=str(work / "data"),
                             epochs=1, batch_size=size["batch"], augment=True, compile=not smoke,
                             device=str(device), threads=1 if smoke else None)
        starts = (first_step_seconds(config, work / "inductor"), first_step_seconds(config, work / "inductor"))
    name = "cpu" if smoke else torch.cuda.get_device_name(0)
    report(rates, flops, peak, starts, device=name, smoke=smoke)
    print(json.dumps({"trials_per_hour": rates, "tflops": flops, "peak_tflops": peak, "first_step_s": starts}))


if __name__ == "__main__":
    main()
