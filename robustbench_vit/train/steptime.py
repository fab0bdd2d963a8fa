"""A training step timed on this machine: what `--dry-run` estimates CPU time from, and what
benchmarks/bench_runtime.py correlates with activations and FLOPs.

A step is forward, cross-entropy, backward and an AdamW update on a batch of random images of the model's input
size, after WARM_STEPS untimed steps (allocator, the first kernels). On the CPU the step's process CPU time is
reported beside its wall time: on a shared machine wall time includes waiting for a core (a niced run measured
2.8 s for a 33 ms step), CPU time does not.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from robustbench_vit.models import ModelSpec, build_model, model_complexity, size_info

WARM_STEPS = 3


@dataclass(frozen=True)
class StepTime:
    """Median seconds of the timed steps: wall clock, and this process's CPU time (equal to wall on one idle core)."""

    wall: float
    cpu: float


def time_step(spec: ModelSpec, batch: int, steps: int = 3, *, device: torch.device | str = "cpu",
              threads: int | None = None) -> StepTime:
    """The median of `steps` training steps of `spec` at `batch` random images, after WARM_STEPS (torch's CPU
    threads set to `threads` for the measurement, then restored)."""
    device = torch.device(device)
    info, cx = size_info(spec.size), model_complexity(spec)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = build_model(spec, info.num_classes, depth=cx.depth).to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randn(batch, info.in_chans, info.img_size, info.img_size, device=device)
        y = torch.randint(0, info.num_classes, (batch,), device=device)
        wall, cpu = [], []
        for i in range(WARM_STEPS + steps):
            t, c = time.perf_counter(), time.process_time()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= WARM_STEPS:
                wall.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
    finally:
        torch.set_num_threads(before)
    return StepTime(statistics.median(wall), statistics.median(cpu))
