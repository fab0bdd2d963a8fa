"""Several trials per GPU (--trials-per-gpu), checked on a CPU machine.

No GPU exists here, so $ROBUSTBENCH_VIT_STANDIN_GPUS=N makes the launcher plan for N GPUs that the CPU stands in
for: each local worker is still pinned to "its" GPU (CUDA_VISIBLE_DEVICES, recorded with every trial) and trains
on the CPU. Everything else (worker processes, claims, storage, checkpoints) is the real thing.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import optuna
import pytest
import torch

from robustbench_vit.data.cifar import write_synthetic
from robustbench_vit.errors import UserError
from robustbench_vit.models import ModelSpec, build_model
from robustbench_vit.store import slot
from robustbench_vit.study import RunOptions, SlurmOptions, load_spec
from robustbench_vit.study.gpus import STANDIN_ENV, choose_trials_per_gpu, packing, trial_memory_gib
from robustbench_vit.study.launch import Launch

ROOT = Path(__file__).resolve().parents[1]

# lr_wd_stability's cifar preset, shrunk to 4 random (lr, wd) points of 1 epoch (5 steps) on 40 synthetic images
CIFAR_YAML = """\
name: {name}
models: [vit_p_tiny, vit_c_tiny]
dataset: cifar10
train: {{optimizer: adamw, epochs: 1, batch_size: 8, warmup_epochs: 0, augment: true, device: auto, threads: 1}}
space:
  lr: {{low: 1.0e-4, high: 1.0e-1, log: true}}
  weight_decay: {{low: 1.0e-3, high: 3.0, log: true}}
design: {{kind: random, points: 4, seed: 0}}
"""


def run_cli(args: list[str], standins: int) -> subprocess.CompletedProcess:
    """`robustbench-vit ARGS` in a fresh process planning for `standins` GPUs."""
    env = {**os.environ, STANDIN_ENV: str(standins)}
    return subprocess.run([sys.executable, "-m", "robustbench_vit.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600)


def finished(url: str, name: str) -> dict[tuple[str, int, int], list[optuna.trial.FrozenTrial]]:
    """Every finished trial per (model, point, seed)."""
    out = defaultdict(list)
    for model in ("vit_p_tiny", "vit_c_tiny"):
        study = optuna.load_study(study_name=f"{name}/{model}", storage=url)
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)):
            out[(model, *slot(t))].append(t)
    return out


def untimed(history: list[dict]) -> list[dict]:
    """A trial's epochs without their wall times."""
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@pytest.mark.slow
def test_trials_share_standin_gpus_exactly_once_with_the_results_of_one_per_gpu(tmp_path):
    """K = 2 on 2 stand-in GPUs: the plan says 4 workers, each GPU gets 2 of them, every trial is claimed and
    trained once, and each result equals the same trial's result at K = 1 (2 workers)."""
    write_synthetic(tmp_path / "data", "cifar10", n=8)
    runs = {}
    for k in (2, 1):
        spec = tmp_path / f"share_k{k}.yaml"
        spec.write_text(CIFAR_YAML.format(name=f"share_k{k}"))
        proc = run_cli(["study", "run", str(spec), "--trials-per-gpu", str(k), "--data-root", str(tmp_path / "data"),
                        "--runs-dir", str(tmp_path / f"runs{k}")], standins=2)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"{k} trial(s) per GPU (--trials-per-gpu); {2 * k} local worker(s) on 2 GPU(s)" in proc.stderr
        runs[k] = finished(f"sqlite:///{tmp_path / f'runs{k}' / f'share_k{k}' / 'study.db'}", f"share_k{k}")
    shared, alone = runs[2], runs[1]
    assert len(shared) == 8 and all(len(ts) == 1 for ts in shared.values())  # exactly once: no duplicate, no retry
    workers = {(t.user_attrs["worker"]["pid"], t.user_attrs["worker"]["gpu"]) for ts in shared.values() for t in ts}
    per_gpu = Counter(gpu for _, gpu in workers)
    assert set(per_gpu) <= {"0", "1"} and max(per_gpu.values()) <= 2 and len(workers) >= 3, workers
    for key, (t,) in shared.items():
        (twin,) = alone[key]
        assert t.user_attrs["status"] == "complete" and t.params == twin.params
        assert untimed(t.user_attrs["history"]) == untimed(twin.user_attrs["history"]) and t.value == twin.value, key
        assert t.user_attrs["first_step_seconds"] > 0


def test_auto_trials_per_gpu_from_size_and_memory(monkeypatch):
    """Auto: tiny CIFAR trials fill a GPU up to 8 (memory permitting), 1GF and up get a GPU each, CPU studies 1;
    an explicit K (flag, then the study) wins."""
    import robustbench_vit.study.gpus as gpus

    cifar, paper = load_spec("lr_wd_stability", preset="cifar"), load_spec("lr_wd_stability", preset="paper")
    need = trial_memory_gib(cifar, ModelSpec.from_name("vit_c_tiny"))
    assert 1.5 < need < 4  # context + 0.74 GB of CIFAR + 3.4 M params + activations of batch 256
    monkeypatch.setattr(gpus, "gpu_memory_gib", lambda: 80.0)
    auto = choose_trials_per_gpu(cifar, cifar.models, None)
    assert auto.trials_per_gpu == 8 and not auto.asked and "vit_c_tiny" in auto.why and "80 GiB" in auto.why
    monkeypatch.setattr(gpus, "gpu_memory_gib", lambda: 8.0)
    assert choose_trials_per_gpu(cifar, cifar.models, None).trials_per_gpu == math.floor(0.85 * 8 / need)
    assert choose_trials_per_gpu(paper, paper.models, None).trials_per_gpu == 1
    assert "1 GF and up" in choose_trials_per_gpu(paper, paper.models, None).why
    cpu = cifar.model_copy(update={"train": {**cifar.train, "device": "cpu"}})
    assert choose_trials_per_gpu(cpu, cpu.models, None).trials_per_gpu == 1
    fixed = cifar.model_copy(update={"trials_per_gpu": 3})
    assert choose_trials_per_gpu(fixed, fixed.models, None).trials_per_gpu == 3
    assert choose_trials_per_gpu(fixed, fixed.models, 5).trials_per_gpu == 5


def test_slurm_jobs_of_one_gpu_run_k_trial_workers(monkeypatch):
    """SLURM: K tasks per one-GPU job splitting its CPUs, plain (not DDP) workers; K > 1 where a trial takes whole
    GPUs (DDP, several GPUs per job) is one error line when asked for, and auto falls back to 1."""
    monkeypatch.setenv(STANDIN_ENV, "0")
    cifar = load_spec("lr_wd_stability", preset="cifar")
    options = RunOptions(executor="slurm", trials_per_gpu=4)
    slurm = options.slurm.over(cifar.slurm)
    pack = packing(cifar, cifar.models, options, slurm)
    launch = Launch(cifar, {}, "sqlite://", "runs", "slurm", 1, slurm, pack.trials_per_gpu)
    assert launch.params["tasks_per_node"] == 4 and launch.params["cpus_per_task"] == 2  # the preset's 8 CPUs / 4
    assert launch.params["gpus_per_node"] == 1 and not launch.ddp
    assert "each SLURM job runs 4 trial worker(s) on its GPU" in launch.describe(pack)
    with pytest.raises(UserError, match=r"--trials-per-gpu 4: trials share a GPU only in jobs of one GPU, not in "
                                         r"DDP jobs \(--slurm-ddp\); allowed: --trials-per-gpu 1"):
        packing(cifar, cifar.models, options, SlurmOptions(ddp=True, gpus_per_node=2).over(slurm))
    paper = load_spec("lr_wd_stability", preset="paper")
    auto = packing(paper, paper.models, RunOptions(executor="slurm"), paper.slurm)
    assert auto.trials_per_gpu == 1
    multi = packing(cifar, cifar.models, RunOptions(executor="slurm"), SlurmOptions(gpus_per_node=4).over(slurm))
    assert multi.trials_per_gpu == 1 and "jobs of several GPUs" in multi.why
    digits = load_spec("lr_sensitivity")  # CPU jobs: nothing to share unless asked
    assert packing(digits, digits.models, RunOptions(executor="slurm"), digits.slurm).trials_per_gpu == 1
    assert packing(digits, digits.models, options, digits.slurm).trials_per_gpu == 4


@pytest.mark.parametrize("args, message", [
    (["--trials-per-gpu", "0"], "trials_per_gpu must be >= 1, got 0"),
    (["--trials-per-gpu", "two"], "argument --trials-per-gpu: invalid int value: 'two'"),
])
def test_bad_trials_per_gpu_is_one_line(tmp_path, args, message):
    """A bad --trials-per-gpu is one line, exit 2, nothing written."""
    proc = run_cli(["study", "run", "lr_sensitivity", "--runs-dir", str(tmp_path / "runs"), *args], standins=0)
    assert proc.returncode == 2 and message in proc.stderr and not (tmp_path / "runs").exists()


def test_study_file_trials_per_gpu_is_checked(tmp_path):
    """`trials_per_gpu:` in a study file: a count >= 1 or auto; anything else names the file and field."""
    base = (ROOT / "studies" / "lr_sensitivity.yaml").read_text()
    for value, ok in (("4", True), ("auto", True), ("0", False), ("many", False)):
        path = tmp_path / f"s_{value}.yaml"
        path.write_text(base + f"trials_per_gpu: {value}\n")
        if ok:
            assert str(load_spec(str(path)).trials_per_gpu) == value
        else:
            with pytest.raises(UserError, match=rf"s_{value}.yaml.*trials_per_gpu"):
                load_spec(str(path))


def test_a_worker_compiles_a_model_shape_once():
    """torch.compile as the trainer uses it: a second trial's new model of the same shape reuses the first
    trial's graphs (dynamo keys on code and shapes, not on the module object), so a worker compiles once.
    The eager backend stands in for inductor (no GPU here); graph capture is the same."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    graphs = []
    for _ in range(2):
        model = build_model(ModelSpec.from_name("vit_c_micro"), 10, depth=4)
        forward = torch.compile(model, backend="eager")
        forward(torch.randn(8, 1, 16, 16)).sum().backward()
        with torch.no_grad():
            forward.eval()(torch.randn(8, 1, 16, 16))
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[0] >= 1 and graphs[1] == graphs[0]


def test_gpu_benchmark_smoke_mode_prints_its_table():
    """`python benchmarks/bench_gpu.py --smoke`: every section runs on the CPU and prints ratios against K = 1."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "smoke run" in out and "K = 1" in out and "K = 2" in out and "1.00x" in out
    assert "vit_c_4gf" in out and "of peak" in out and "first step after trial start" in out
