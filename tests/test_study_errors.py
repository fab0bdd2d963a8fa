"""Study harness failure paths: claims that are interrupted, twin trials, bad user input caught before storage.

Real SQLite storage and real Optuna trials throughout. Where a test needs a failure at an exact moment (a Ctrl-C
between the claim and the start of training), it patches the one function running at that moment to raise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from robustbench_vit.errors import UserError
from robustbench_vit.store import resolve_storage
from robustbench_vit.store.optuna_internals import storage_of
from robustbench_vit.study import runner
from robustbench_vit.study.workers import guard_preemption_handler
from robustbench_vit.study.plan import plan
from robustbench_vit.study.queue import enqueue_missing, open_studies
from tests.study_contract import MODELS, small_spec


def queued(tmp_path, prefix: str, epochs: int = 1):
    """A small study with every slot queued in fresh SQLite storage: (spec, url, {model: study})."""
    spec = small_spec(tmp_path, prefix, epochs)
    url = resolve_storage(spec.name, tmp_path / "runs")
    studies = open_studies(spec, url)
    for s in studies.values():
        enqueue_missing(s, plan(spec), spec.design.seed_list)
    return spec, url, studies


def states(study: optuna.Study) -> list[TrialState]:
    """The states of a study's trials, by number."""
    return [t.state for t in study.get_trials(deepcopy=False)]


def test_interrupt_between_claim_and_training_requeues(tmp_path, monkeypatch):
    """A Ctrl-C while the claimed trial's config is built puts it back in the queue (not RUNNING forever)."""
    spec, url, studies = queued(tmp_path, "claim_int")

    def interrupted(self, spec, threads):
        """Ctrl-C right after the claim, before the heartbeat thread starts."""
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.TrialRun, "config", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.work(url, spec.name, list(MODELS), tmp_path / "runs", trial_fn=lambda *a: pytest.fail("trained"))
    assert all(s == TrialState.WAITING for st in studies.values() for s in states(st))


def test_failing_preemption_handler_requeues_the_trial(tmp_path):
    """submitit's requeue failing inside its signal handler mid-training must put the trial back in the queue.

    On a real SLURM node the preemption's SIGTERM killed the `scontrol requeue` that submitit's USR2 handler runs,
    and its CalledProcessError surfaced inside the trainer as a "failed" trial. The real trainer runs here; the
    handler stands in for submitit's (no SLURM job) and raises what submitit's raised there.
    """
    spec, url, studies = queued(tmp_path, "preempt_handler", epochs=2)

    def requeue_killed(signum, frame):
        raise subprocess.CalledProcessError(-signal.SIGTERM, ["scontrol", "requeue", "1"])

    previous = signal.signal(signal.SIGUSR2, requeue_killed)
    try:
        guard_preemption_handler()
        with pytest.raises(SystemExit):  # the preemption arrives after epoch 0's checkpoint
            runner.work(url, spec.name, [MODELS[1]], tmp_path / "runs", threads=1,
                        on_epoch=lambda model, record: os.kill(os.getpid(), signal.SIGUSR2))
    finally:
        signal.signal(signal.SIGUSR2, previous)
    study = studies[MODELS[1]]
    assert states(study) == [TrialState.WAITING, TrialState.WAITING]  # released, not failed; nothing else ran
    assert (tmp_path / "runs" / spec.name / "trials" / MODELS[1] / "p0-s0" / "last.pt").is_file()


def test_claimed_trial_is_heartbeated_at_once(tmp_path, monkeypatch):
    """A worker dying right after the claim leaves a trial that goes stale (then re-queued), never RUNNING forever."""
    monkeypatch.setenv("ROBUSTBENCH_VIT_GRACE_S", "1")
    spec, url, studies = queued(tmp_path, "claim_hb")
    seen = {}

    def dies(self, spec, threads):
        """Stand-in for a SIGKILL before training: wait past the grace period, then look for stale trials."""
        time.sleep(2.5)
        seen["stale"] = optuna.storages.fail_stale_trials(self.study) or storage_of(self.study).get_trial(
            self.trial_id).state
        raise SystemExit(1)

    monkeypatch.setattr(runner.TrialRun, "config", dies)
    with pytest.raises(SystemExit):
        runner.work(url, spec.name, list(MODELS), tmp_path / "runs", trial_fn=lambda *a: pytest.fail("trained"))
    assert seen["stale"] == TrialState.FAIL  # had a heartbeat: failed as stale (and retried by the callback)
    first = studies[MODELS[0]]
    assert TrialState.RUNNING not in states(first) and states(first).count(TrialState.WAITING) == 2


def test_queued_twin_with_lower_number_wins(tmp_path):
    """Two processes enqueuing the same slot at once: the later twin is a duplicate, even while both are queued."""
    spec, url, studies = queued(tmp_path, "twins")
    study = studies[MODELS[0]]
    enqueue_missing(study, plan(spec), spec.design.seed_list)  # a second `study run` would not add twins ...
    assert len(study.trials) == 2
    for t in list(study.get_trials(deepcopy=False)):  # ... but one racing the first one does: add them by hand
        study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params=t.params,
                                                  distributions=t.distributions, user_attrs=t.user_attrs))
    frozen = study.trials
    assert [runner.is_duplicate(study, t) for t in frozen] == [False, False, True, True]


STEM = """import torch.nn as nn


class S(nn.Module):
    def __init__(self, in_chans, embed_dim, patch_size):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, patch_size)

    def forward(self, x):
        return self.proj(x)
"""


@pytest.mark.parametrize("body, args, message", [
    ("stems: [{name: mine, path: 's.py:S', options: {width: 3}}]\n", [],
     "stem '{stem}' (mine): building it failed: TypeError"),
    ("dataset: cifar10\n", ["--workers", "2"], "dataset cifar10 needs --data-root"),
    ("dataset: cifar10\n", ["--data-root", "{tmp}"], "data root {tmp}: no cifar-10-batches-py/ folder"),
])
def test_bad_stem_or_data_is_one_line_before_anything_is_written(body, args, message, tmp_path, capsys):
    """A stem that cannot be built, or a dataset that cannot be loaded: exit 2, one line, no storage, no workers."""
    from robustbench_vit.cli import main

    (tmp_path / "s.py").write_text(STEM)
    path, runs = tmp_path / "bad.yaml", tmp_path / "runs"
    path.write_text("models: [vit_p_micro]\n" + body + "train: {epochs: 1}\nspace:\n  lr: {values: [0.001]}\n")
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(["study", "run", str(path), "--runs-dir", str(runs), *args]) == 2
    err = capsys.readouterr().err.strip()
    want = message.format(stem=f"{(tmp_path / 's.py').resolve()}:S", tmp=tmp_path)
    assert len(err.splitlines()) == 1 and want in err, err
    assert not runs.exists()


def test_detach_without_slurm_is_one_line_and_writes_nothing(tmp_path, capsys):
    """Local and inline trials cannot outlive the command: --detach is refused before anything is written."""
    from robustbench_vit.cli import main

    spec, runs = small_spec(tmp_path, "detach"), tmp_path / "runs"
    assert main(["study", "run", spec.source, "--runs-dir", str(runs), "--workers", "2", "--detach"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--detach needs --executor slurm" in err and "'local'" in err, err
    assert not runs.exists()


def test_slurm_executor_without_slurm_is_one_line(tmp_path, capsys, monkeypatch):
    """No sbatch/sinfo/sacct on PATH (a laptop, not a login node): refused before anything is written."""
    from robustbench_vit.cli import main

    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # the venv's scripts only
    spec, runs = small_spec(tmp_path, "noslurm"), tmp_path / "runs"
    assert main(["study", "run", spec.source, "--runs-dir", str(runs), "--executor", "slurm"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sbatch, sinfo, sacct not found on PATH" in err, err
    assert not runs.exists()


def test_new_local_workers_get_the_least_used_gpus():
    """After a worker crash, its replacement goes to the GPU no live worker uses, not to a busy one."""
    from robustbench_vit.study.gpus import pick_gpus

    assert pick_gpus(2, 0, []) == [None, None]
    assert pick_gpus(4, 4, []) == [0, 1, 2, 3]
    assert pick_gpus(1, 4, [0, 2, 3]) == [1]  # the worker on GPU 1 crashed
    assert pick_gpus(3, 2, [1]) == [0, 0, 1]  # more workers than GPUs: spread evenly


def test_default_workers_fill_the_cpu_only_when_the_study_pins_threads(tmp_path):
    """--workers' default: cores // pinned threads (the built-in CPU studies pin 1), else 1; inline/slurm: 1."""
    import torch

    from robustbench_vit.study.files import load_spec
    from robustbench_vit.study.gpus import auto_workers

    if torch.cuda.is_available():
        pytest.skip("with a GPU the default is one worker per GPU")
    cores, spec = os.cpu_count() or 1, small_spec(tmp_path, "workers")
    pinned = spec.model_copy(update={"train": {**spec.train, "threads": 1}})
    assert auto_workers(spec) == 1  # threads not pinned: one worker uses every core
    assert auto_workers(pinned) == auto_workers(pinned, "local") == cores
    assert auto_workers(pinned.model_copy(update={"train": {**spec.train, "threads": 2}})) == max(1, cores // 2)
    assert auto_workers(pinned, "inline") == auto_workers(pinned, "slurm") == 1
    assert auto_workers(load_spec("lr_sensitivity")) == cores


@pytest.mark.parametrize("command", ["run", "status"])
@pytest.mark.parametrize("url", ["notaurl", "postgresql+psycopg://me:s3cret@127.0.0.1:1/db"])
def test_bad_or_unreachable_storage_is_one_masked_line(command, url, tmp_path, capsys):
    """A malformed URL: exit 2, one line naming the storage, password masked. A server that is not there is
    waited for (--storage-wait, here 1 s; one line says so), then the same: exit 2, one masked line."""
    from robustbench_vit.cli import main

    before = os.environ.get("ROBUSTBENCH_VIT_STORAGE_WAIT_S")
    path = tmp_path / "st.yaml"
    path.write_text("models: [vit_p_micro]\ntrain: {epochs: 1}\nspace:\n  lr: {values: [0.001]}\n")
    assert main(["study", command, str(path) if command == "run" else "st", "--storage", url,
                 "--runs-dir", str(tmp_path / "runs"), "--storage-wait", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "s3cret" not in "\n".join(err), err
    if url == "notaurl":
        assert len(err) == 1 and "cannot open it" in err[0], err
    else:
        assert len(err) == 2 and "Connection refused), retrying for 1 s" in err[0]
        assert err[1].startswith("robustbench-vit: error: storage postgresql+psycopg://me:***@127.0.0.1:1/db: "
                                 "unreachable for 1 s"), err
    assert os.environ.get("ROBUSTBENCH_VIT_STORAGE_WAIT_S") == before  # --storage-wait ends with the command
    assert not (tmp_path / "runs").exists()


def test_printed_storage_urls_hide_passwords():
    """`study run` repeats --storage in its follow-up commands with the password masked."""
    from robustbench_vit.commands.study import _location_flags
    from robustbench_vit.store import mask_url

    flags = _location_flags("runs", "postgresql://me:s3cret@db:5432/rbv")
    assert flags == " --storage 'postgresql://me:***@db:5432/rbv'"
    assert mask_url("not a url://me:s3cret@host") == "not a url://me:***@host"
    assert mask_url("sqlite:////tmp/x/study.db") == "sqlite:////tmp/x/study.db"


def test_failed_tpe_trial_is_retried_with_its_own_sample(tmp_path):
    """A failed tpe trial's retry trains the same sampled params, so it can resume the failed attempt's checkpoint.

    The failure is made by reporting a real 1-epoch trial (which wrote its last.pt) as failed.
    """
    from robustbench_vit.study.files import load_spec
    from robustbench_vit.train import run_trial

    path, runs = tmp_path / "tpe_retry.yaml", tmp_path / "runs"
    path.write_text("models: [vit_p_micro]\ntrain: {epochs: 1, batch_size: 256}\n"
                    "space:\n  lr: {low: 1.0e-4, high: 1.0e-2, log: true}\ndesign: {kind: tpe, points: 2, seed: 3}\n")
    spec = load_spec(str(path))
    url = resolve_storage(spec.name, runs)
    study = open_studies(spec, url)["vit_p_micro"]
    enqueue_missing(study, plan(spec), spec.design.seed_list)

    def fails(config, folder, on_epoch):
        """Train for real, then report the trial as failed (its checkpoint stays)."""
        return run_trial(config, folder, on_epoch).model_copy(update={"status": "failed"})

    assert runner.work(url, spec.name, ["vit_p_micro"], runs, max_trials=1, trial_fn=fails) == 1
    first = study.trials[0]
    assert first.state == TrialState.FAIL and first.params
    assert enqueue_missing(study, plan(spec), spec.design.seed_list) == 1
    runner.work(url, spec.name, ["vit_p_micro"], runs)  # old code: "checkpoint of a different trial config"
    retry = [t for t in study.trials if t.state == TrialState.COMPLETE and t.user_attrs["point"] == 0]
    assert len(retry) == 1 and retry[0].params == first.params
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 2


def test_changed_model_on_the_same_storage_is_refused(tmp_path):
    """Same spec, but a model with other stem options (or depth): refused, not silently mixed with the old trials."""
    spec = small_spec(tmp_path, "model_change")
    url = resolve_storage(spec.name, tmp_path / "runs")
    conv = spec.models[1]
    open_studies(spec, url, [conv])
    assert open_studies(spec, url, [conv.model_copy(update={"depth": 3})])  # depth filled in later: same model
    for change in ({"stem_options": {"width": 16}}, {"stem": "patchify"}):
        with pytest.raises(UserError, match="was made from a different spec"):
            open_studies(spec, url, [conv.model_copy(update=change)])


def test_edited_stem_file_on_the_same_storage_is_refused(tmp_path):
    """A user stem's file edited after its trials were stored: refused (the old trials trained another stem)."""
    stem_file = tmp_path / "my_stem.py"
    stem_file.write_text((Path(__file__).parents[1] / "examples" / "overlap_stem.py").read_text())
    spec = small_spec(tmp_path, "stem_edit")
    url = resolve_storage(spec.name, tmp_path / "runs")
    mine = spec.models[0].model_copy(update={"name": "mine", "stem": f"{stem_file}:OverlapPatchStem"})
    open_studies(spec, url, [mine])
    assert open_studies(spec, url, [mine])  # unchanged: reopened
    stem_file.write_text(stem_file.read_text() + "\n# tuned\n")
    with pytest.raises(UserError, match=f"stem file {stem_file} changed since study"):
        open_studies(spec, url, [mine])


def ddp_rank(rank: int, port: int, url: str, out: str) -> None:
    """One rank of a 2-process gloo DDP job whose rank 0 fails at once (its storage does not exist)."""
    from robustbench_vit.study.ddp import ddp_work
    from tests.test_ddp import join

    join(rank, 2, port)
    try:
        result = str(ddp_work(url, "missing", ["vit_c_micro"], threads=1))
    except UserError as e:
        result = f"UserError: {e}"
    Path(out, f"rank{rank}").write_text(result)


def test_ddp_job_ends_on_every_rank_when_rank_0_fails(tmp_path):
    """Rank 0 failing before its first trial still releases the other ranks (they would wait for a trial forever)."""
    import torch.multiprocessing as mp

    from tests.test_ddp import free_port

    url = f"sqlite:///{tmp_path / 'none' / 'study.db'}"
    ctx = mp.spawn(ddp_rank, args=(free_port(), url, str(tmp_path)), nprocs=2, join=False)
    end = time.time() + 60
    while not ctx.join(timeout=1) and time.time() < end:
        pass
    for p in ctx.processes:
        if p.is_alive():
            p.kill()
    assert (tmp_path / "rank0").read_text().startswith("UserError: no study storage")
    assert (tmp_path / "rank1").read_text() == "0"
