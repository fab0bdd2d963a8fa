"""DDP trials for real: two gloo processes on 127.0.0.1 (1 thread each) train one trial, then the harness path."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from robustbench_vit.models import ModelSpec
from robustbench_vit.train import TrialConfig, TrialResult, run_trial

CONFIG = TrialConfig(model=ModelSpec.from_name("vit_c_micro"), epochs=2, batch_size=64, threads=1)


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join(rank: int, world: int, port: int) -> None:
    """Join a gloo group the way a launcher does: through the env:// variables."""
    from robustbench_vit.train.dist import init_from_env

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    assert init_from_env() == (rank, world)


class Stop(BaseException):
    """Raised from the progress hook on every rank to interrupt a trial after an epoch's checkpoint."""


def trial_rank(rank: int, world: int, port: int, folder: str, out: str, stop_after: int | None) -> None:
    """One rank: run the trial (counting this rank's checkpoint writes), write its result as JSON."""
    import robustbench_vit.train.loop as loop

    join(rank, world, port)
    saves = Path(out) / f"saves{rank}.txt"
    real_save = loop.save_checkpoint

    def counted(path, state):
        """The real save, plus one line per write from this rank."""
        with saves.open("a") as f:
            f.write(f"{state['history'][-1]['epoch']}\n")
        real_save(path, state)

    def stop(record):
        """Interrupt after epoch `stop_after` (all ranks alike, as a preempted job would be)."""
        if record.epoch == stop_after:
            raise Stop

    loop.save_checkpoint = counted
    try:
        result = run_trial(CONFIG, folder, stop if stop_after is not None else None)
        (Path(out) / f"rank{rank}.json").write_text(result.model_dump_json())
    except Stop:
        pass
    finally:
        dist.destroy_process_group()


def ddp_trial(folder: Path, out: Path, stop_after: int | None = None) -> list[TrialResult]:
    """Run CONFIG as a 2-process gloo DDP job; the results of ranks 0 and 1 (none when stopped)."""
    out.mkdir(exist_ok=True)
    for f in out.glob("rank*.json"):
        f.unlink()
    mp.spawn(trial_rank, args=(2, free_port(), str(folder), str(out), stop_after), nprocs=2)
    return [TrialResult.model_validate_json(f.read_text()) for f in sorted(out.glob("rank*.json"))]


def writes(out: Path, rank: int) -> list[int]:
    """Epochs whose checkpoint this rank wrote."""
    f = out / f"saves{rank}.txt"
    return [int(x) for x in f.read_text().split()] if f.exists() else []


@pytest.mark.slow
def test_two_process_gloo_trial_same_result_format_on_both_ranks(tmp_path):
    """Both ranks return one identical TrialResult; rank 0 alone writes the checkpoint; resume after epoch 0 matches."""
    a, b = ddp_trial(tmp_path / "trial", tmp_path / "out")
    assert a == b and a.status == "complete" and a.epochs_run == 2 and a.device == "cpu x2 (DDP)"
    assert a.final_error < 90 and a.history[1].train_loss < a.history[0].train_loss
    assert a.params > 100_000 and set(json.loads(a.model_dump_json())) == set(TrialResult.model_fields)
    assert writes(tmp_path / "out", 0) == [0, 1] and writes(tmp_path / "out", 1) == []
    ckpt = torch.load(tmp_path / "trial" / "last.pt", weights_only=True)
    assert TrialResult.model_validate(ckpt["result"]).final_error == a.final_error

    # the global batch stays 64: one process with batch 64 takes the same steps on the same images
    single = run_trial(CONFIG)
    assert [h.lr for h in single.history] == [h.lr for h in a.history]
    assert abs(single.history[0].train_loss - a.history[0].train_loss) < 0.05

    # interrupted after epoch 0 on both ranks, then resumed: every rank loads the same last.pt
    assert ddp_trial(tmp_path / "again", tmp_path / "out2", stop_after=0) == []
    assert writes(tmp_path / "out2", 0) == [0] and (tmp_path / "again" / "last.pt").is_file()
    c, d = ddp_trial(tmp_path / "again", tmp_path / "out2")
    assert c == d and writes(tmp_path / "out2", 0) == [0, 1] and writes(tmp_path / "out2", 1) == []
    assert [(h.train_loss, h.val_error) for h in c.history] == [(h.train_loss, h.val_error) for h in a.history]


SPEC_YAML = """\
description: one DDP trial
models: [vit_c_micro]
dataset: digits
train: {epochs: 2, batch_size: 64, threads: 1}
space:
  lr: {values: [0.001]}
design: {kind: grid, seeds: 1}
"""


def slurm_parameters(spec, **flags):
    """submitit's parameters for `spec` with the given --slurm-* settings merged over its `slurm:` block."""
    from robustbench_vit.study.options import SlurmOptions

    return SlurmOptions(**flags).over(spec.slurm).submitit_parameters(spec.threads)


def test_ddp_is_on_from_the_slurm_block_and_in_the_paper_preset(tmp_path):
    """`ddp: true` asks submitit for one task per GPU (DDPWorker jobs); without it nothing changes."""
    from robustbench_vit.study.files import load_spec
    from robustbench_vit.study.workers import is_ddp

    (tmp_path / "one.yaml").write_text(SPEC_YAML)
    spec = load_spec(str(tmp_path / "one.yaml"))
    ddp = slurm_parameters(spec, gpus_per_node=4, ddp=True, partition="gpu")
    assert ddp["tasks_per_node"] == 4 and ddp["slurm_srun_args"] == ["--kill-on-bad-exit=1"]
    assert ddp["slurm_partition"] == "gpu" and "partition" not in ddp  # SLURM-only keys get submitit's prefix
    assert slurm_parameters(spec, gpus_per_node=4, ddp=True, tasks_per_node=2)["tasks_per_node"] == 2
    plain = slurm_parameters(spec, gpus_per_node=4)
    assert not {"tasks_per_node", "ddp", "slurm_srun_args"} & set(plain) and not is_ddp(plain)
    paper = slurm_parameters(load_spec("lr_wd_stability", preset="paper"))
    assert is_ddp(paper) and paper["tasks_per_node"] == paper["gpus_per_node"] == 8 and "ddp" not in paper
    assert not is_ddp(slurm_parameters(load_spec("lr_wd_stability", preset="paper"), ddp=False))


@pytest.mark.slow
def test_ddp_job_claims_trains_and_stores_one_trial(tmp_path):
    """A real 2-task submitit job (DDPWorker): rank 0 claims the one queued trial and stores it once; both ranks train."""
    import optuna
    import submitit

    from robustbench_vit.store import resolve_storage
    from robustbench_vit.study.files import load_spec
    from robustbench_vit.study.workers import DDPWorker, WorkerArgs
    from robustbench_vit.study.plan import plan
    from robustbench_vit.study.queue import enqueue_missing, open_studies

    (tmp_path / "one.yaml").write_text(SPEC_YAML)
    spec, runs = load_spec(str(tmp_path / "one.yaml")), tmp_path / "runs"
    url = resolve_storage(spec.name, runs)
    study = open_studies(spec, url, spec.models)["vit_c_micro"]
    enqueue_missing(study, plan(spec), spec.design.seed_list)
    ex = submitit.AutoExecutor(folder=tmp_path / "logs", cluster="local")
    ex.update_parameters(timeout_min=10, tasks_per_node=2)
    job = ex.submit(DDPWorker(WorkerArgs(url, spec.name, ("vit_c_micro",), str(runs), threads=1)))
    assert job.results() == [1, 1]  # every rank trained the one trial

    trials = optuna.load_study(study_name=f"{spec.name}/vit_c_micro", storage=url).trials
    assert len(trials) == 1 and trials[0].state == optuna.trial.TrialState.COMPLETE
    attrs = trials[0].user_attrs
    assert (attrs["point"], attrs["seed"], attrs["status"], attrs["epochs_run"]) == (0, 0, "complete", 2)
    assert trials[0].value == attrs["final_error"] < 90 and len(attrs["history"]) == 2
    assert attrs["config"]["batch_size"] == 64 and trials[0].params == {"lr": 0.001}
    ckpt = torch.load(runs / spec.name / "trials" / "vit_c_micro" / "p0-s0" / "last.pt", weights_only=True)
    assert ckpt["result"]["device"] == "cpu x2 (DDP)" and ckpt["result"]["final_error"] == attrs["final_error"]
