"""Benchmark: our trainer vs a bare PyTorch + timm loop (same model, data, batch, steps); FLOP/s vs matmul peak.

    python benchmarks/bench_trainer.py [--model vit_c_micro] [--dataset digits] [--batch-size 128] [--epochs 6]
    python benchmarks/bench_trainer.py --dataset fashion_mnist --train-subset 5000 --batch-size 64   # the fashion preset

Both sides run whole epochs of identical work: shuffled training steps (no augmentation) plus one pass over the
validation set. Epoch 0 is a warm-up and is not timed; the sides run `--repeats` times each, alternating
which goes first, and the median epoch time of each side is compared. FLOPs assume 1 multiply-add = 2 FLOPs
and a training step = 3× the forward pass (forward + backward), from the model's counted GMACs (attention
matmuls included).

Per-trial overhead is the time from a trial's start to its first optimizer step done (data, model, optimizer,
schedule, loaders, the step itself): the trainer's `first_step_seconds` against the bare loop's, in this process
(warm: imports done, a worker's later trials) and in a fresh Python process each (cold: a worker's first trial,
`robustbench-vit train`), with the interpreter start and imports shown apart.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from robustbench_vit.data import load_dataset
from robustbench_vit.models import ModelSpec, build_model, model_complexity, size_info
from robustbench_vit.train import TrialConfig, run_trial
from robustbench_vit.train.optim import autocast, resolve_device


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, n: int = 2048, reps: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """This machine's matmul throughput in `dtype` (GFLOP/s; fp32 without TF32): best of `reps` n×n×n products."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    torch.backends.cuda.matmul.allow_tf32 = False
    best = float("inf")
    for _ in range(reps + 2):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def bare_epochs(config: TrialConfig, data, device: torch.device) -> tuple[list[float], float]:
    """Epoch times of a bare loop (randperm batches, timm ViT, torch AdamW, cross-entropy, then a val pass) and
    its seconds from the start to the first optimizer step done."""
    started, first = time.perf_counter(), None
    torch.manual_seed(config.seed)
    model = build_model(config.model, data.num_classes, depth=model_complexity(config.model).depth).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    x_all, y_all, bs, times = data.train_x, data.train_y, config.batch_size, []
    for _ in range(config.epochs):
        sync(device)
        t = time.perf_counter()
        model.train()
        perm = torch.randperm(len(x_all), device=device)
        for i in range(len(x_all) // bs):
            idx = perm[i * bs : (i + 1) * bs]
            with autocast(device, config.amp):
                loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if first is None:
                sync(device)
                first = time.perf_counter() - started
        model.eval()
        with torch.no_grad(), autocast(device, config.amp):
            wrong = sum((model(data.val_x[j : j + 256]).argmax(1) != data.val_y[j : j + 256]).sum()
                        for j in range(0, len(data.val_x), 256))
        wrong.item()
        times.append(time.perf_counter() - t)
    return times, first


def trainer_epochs(config: TrialConfig) -> tuple[list[float], float]:
    """Epoch times of our trainer (run_trial's per-epoch seconds: training steps + val pass) and its seconds
    before the first step (run_trial's first_step_seconds)."""
    result = run_trial(config)
    return [h.seconds for h in result.history], result.first_step_seconds


COLD = """
import json, sys, time
t0 = time.perf_counter()
import torch
from robustbench_vit.models import ModelSpec
from robustbench_vit.train import TrialConfig, run_trial
from robustbench_vit.train.optim import resolve_device
{threads}
t1 = time.perf_counter()
spec = ModelSpec.from_name({model!r})
config = TrialConfig(model=spec, dataset={dataset!r}, data_root={root!r}, batch_size={batch}, epochs=1, augment=False,
                     device={device!r}, threads={threads_arg}, train_subset={subset!r})
{body}
print(json.dumps({{"imports": t1 - t0, "first_step": first}}))
"""
COLD_OURS = "first = run_trial(config).first_step_seconds"
COLD_BARE = """sys.path.insert(0, {here!r})
from bench_trainer import bare_loop_first_step
first = bare_loop_first_step(config)"""


def bare_loop_first_step(config: TrialConfig) -> float:
    """A fresh process's bare loop: load the data, then (timed) build and take the first step."""
    from robustbench_vit.data import load_dataset as load

    device = resolve_device(config.device)
    started = time.perf_counter()
    data = load(config.dataset, config.data_root, device=device, img_size=size_info(config.model.size).img_size,
                train_subset=config.train_subset)
    return time.perf_counter() - started + bare_epochs(config, data, device)[1]


def cold_start(args, body: str) -> dict:
    """One fresh Python process: wall seconds to its exit, seconds of imports, seconds before the first step."""
    from pathlib import Path

    code = COLD.format(model=args.model, dataset=args.dataset, root=args.data_root, batch=args.batch_size,
                       subset=args.train_subset,
                       device=args.device, threads_arg=args.threads,
                       threads=f"torch.set_num_threads({args.threads})" if args.threads else "",
                       body=body.format(here=str(Path(__file__).resolve().parent)))
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"process": time.perf_counter() - t}


def main(argv: list[str] | None = None) -> None:
    """Time both sides, print images/s, their ratio, matmul GFLOP/s and the trainer's fraction of it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vit_c_micro")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--train-subset", type=int, default=None, help="fashion_mnist: train on this many images")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=6, help="per run; the first is a warm-up")
    ap.add_argument("--repeats", type=int, default=4, help="runs per side (alternating order)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    spec = ModelSpec.from_name(args.model)
    config = TrialConfig(model=spec, dataset=args.dataset, data_root=args.data_root, batch_size=args.batch_size,
                         epochs=args.epochs, augment=False, device=str(device), threads=args.threads,
                         train_subset=args.train_subset)
    data = load_dataset(args.dataset, args.data_root, device=device, img_size=size_info(spec.size).img_size,
                        train_subset=args.train_subset)
    gmacs = model_complexity(spec, data.num_classes).gmacs
    train_imgs = (data.num_train // args.batch_size) * args.batch_size
    bare, ours, first_bare, first_ours = [], [], [], []
    trainer_epochs(config.model_copy(update={"epochs": 1}))  # this process's one-time costs (imports, caches)
    for r in range(args.repeats):  # alternate which side goes first, so neither profits from order
        for side in ("bare", "ours") if r % 2 == 0 else ("ours", "bare"):
            if side == "bare":
                times, first = bare_epochs(config, data, device)
                bare, first_bare = bare + times[1:], first_bare + [first]
            else:
                times, first = trainer_epochs(config)
                ours, first_ours = ours + times[1:], first_ours + [first]
    t_bare, t_ours = statistics.median(bare), statistics.median(ours)
    f_bare, f_ours = statistics.median(first_bare), statistics.median(first_ours)
    cold = {side: cold_start(args, body) for side, body in (("bare", COLD_BARE), ("ours", COLD_OURS))}
    peak = matmul_gflops(device)
    achieved = (train_imgs * 3 + data.num_val) * 2 * gmacs / t_ours  # GFLOP/s
    print(f"device {device} ({torch.get_num_threads()} threads), {args.model} on {args.dataset}, batch "
          f"{args.batch_size}, {train_imgs} train + {data.num_val} val images per epoch, "
          f"{len(ours)} timed epochs per side")
    print(f"bare PyTorch + timm loop : {train_imgs / t_bare:10.1f} images/s  (median epoch {t_bare * 1e3:.1f} ms)")
    print(f"robustbench-vit trainer  : {train_imgs / t_ours:10.1f} images/s  (median epoch {t_ours * 1e3:.1f} ms)")
    print(f"ratio trainer / bare     : {t_bare / t_ours:10.3f}  (target >= 0.95)")
    print(f"per-trial overhead, warm : trainer {f_ours * 1e3:.1f} ms vs bare {f_bare * 1e3:.1f} ms before the first step "
          f"(ratio {f_ours / f_bare:.2f}; median of {len(first_ours)}; a worker's later trials)")
    c_bare, c_ours = cold["bare"], cold["ours"]
    print(f"per-trial overhead, cold : trainer {c_ours['first_step']:.2f} s vs bare {c_bare['first_step']:.2f} s before "
          f"the first step (ratio {c_ours['first_step'] / c_bare['first_step']:.2f}; a fresh process's first trial), "
          f"after imports of {c_ours['imports']:.2f} s; whole process {c_ours['process']:.2f} s vs "
          f"{c_bare['process']:.2f} s")
    print(f"fp32 matmul peak         : {peak:10.1f} GFLOP/s")
    print(f"trainer achieved         : {achieved:10.2f} GFLOP/s = {achieved / peak:.1%} of matmul peak "
          f"({gmacs:.4g} GMACs/image; train = 3× forward, 2 FLOPs per MAC)")


if __name__ == "__main__":
    main()
