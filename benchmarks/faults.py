"""Fault suite: real faults against real components, and a count of what each one cost.

    python benchmarks/faults.py                 # every scenario at full size (about 15 minutes on 2 cores)
    python benchmarks/faults.py --small         # smaller counts (what tests/test_faults.py runs)
    python benchmarks/faults.py --only kill,checkpoint

Scenarios (each a study of micro models on digits, run by the real CLI in a subprocess):
  kill        `kill -9` of random local workers, each after another trial finished (64 trials, 10 kills)
  postgres    the PostgreSQL server stopped mid-study and started again 30 s later (16 trials)
  slurm       running SLURM jobs preempted (SIGTERM, then the requeue signal) on the single-node cluster
  checkpoint  `kill -9` of a training process the moment a checkpoint write starts, then resumed (5 kills)
  workers     8 local workers on one SQLite file over 128 short trials

Per scenario: trials planned; finished; lost (planned, not finished: must be 0); finished twice (must be 0);
resumed from a checkpoint; of those, how many have exactly the history of the same config trained without
interruption (CPU: all); lock or connection errors that reached the user (tracebacks, "database is locked";
must be 0); wall time. A scenario whose service is missing (no PostgreSQL, no SLURM) says so instead.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from robustbench_vit.store import quiet_optuna

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "cluster"
MODELS = ("vit_p_micro", "vit_c_micro")
ERRORS = re.compile(r"Traceback|database is locked|OperationalError|StorageInternalError|could not connect")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ROBUSTBENCH_VIT_GRACE_S": "6"}  # stale after 6 s without heartbeats


@dataclass
class Row:
    """One scenario's outcome."""

    scenario: str
    planned: int = 0
    finished: int = 0
    twice: int = 0
    resumed: int = 0
    identical: int = 0
    errors: int = 0
    seconds: float = 0.0
    note: str = ""
    faults: int = 0

    @property
    def lost(self) -> int:
        return self.planned - self.finished


@dataclass
class Study:
    """A study file in a scratch folder, and how to run it through the CLI."""

    folder: Path
    points: int  # lr values per model
    epochs: int
    storage: str | None = None
    extra: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = f"faults_{self.folder.name}"
        self.path = self.folder / f"{self.name}.yaml"
        self.runs = self.folder / "runs"
        self.path.write_text(f"models: [{', '.join(MODELS)}]\ntrain: {{epochs: {self.epochs}, batch_size: 256, "
                             f"threads: 1}}\nspace:\n  lr: {{low: 3.0e-4, high: 3.0e-3, log: true, "
                             f"num: {self.points}}}\n")

    @property
    def url(self) -> str:
        return self.storage or f"sqlite:///{(self.runs / self.name / 'study.db').resolve()}"

    def start(self, *args: str) -> subprocess.Popen:
        """`robustbench-vit study run` on this study, in its own process group."""
        cmd = [sys.executable, "-m", "robustbench_vit.cli", "study", "run", str(self.path), "--runs-dir",
               str(self.runs), *(["--storage", self.storage] if self.storage else []), *self.extra, *args]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                                start_new_session=True)

    def finished(self) -> int:
        """Trials stored as finished so far (0 before the storage exists)."""
        try:
            return sum(sum(t.state == optuna.trial.TrialState.COMPLETE for t in self.trials(m)) for m in MODELS)
        except Exception:  # noqa: BLE001 — not created yet, or the server is down right now
            return 0

    def trials(self, model: str) -> list[optuna.trial.FrozenTrial]:
        with quiet_optuna():
            return optuna.load_study(study_name=f"{self.name}/{model}", storage=self.url).get_trials(deepcopy=False)


def tally(study: Study, row: Row, stderr: str) -> Row:
    """Count planned, finished, twice, resumed and identical trials from the storage, errors from stderr."""
    from robustbench_vit.train import TrialConfig, run_trial

    row.planned = len(MODELS) * study.points
    for model in MODELS:
        done: dict[tuple[int, int], list] = {}
        for t in study.trials(model):
            if t.state == optuna.trial.TrialState.COMPLETE:
                done.setdefault((t.user_attrs["point"], t.user_attrs["seed"]), []).append(t)
        row.finished += len(done)
        row.twice += sum(len(ts) > 1 for ts in done.values())
        for (t, *_) in done.values():
            if t.user_attrs.get("resumed_epochs", 0) > 0:
                row.resumed += 1
                straight = run_trial(TrialConfig.model_validate(t.user_attrs["config"]))
                row.identical += [(h.train_loss, h.val_error) for h in straight.history] == \
                    [(h["train_loss"], h["val_error"]) for h in t.user_attrs["history"]]
    row.errors = sum(bool(ERRORS.search(line)) for line in stderr.splitlines())
    return row


def workers(pid: int) -> list[int]:
    """The worker processes of the `study run` process `pid`: its descendants that have no children themselves
    (submitit starts each local job under a controller process)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    below, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - below
        below |= frontier
    return sorted(p for p in below if p not in parent.values())


def finish(proc: subprocess.Popen, timeout: float = 1800) -> str:
    """Wait for the study run; its stderr (the whole process group is killed if it overstays)."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        err += "\nTraceback: the study run overstayed and was killed"
    if proc.returncode != 0:
        err += f"\nTraceback: study run exit code {proc.returncode}"
    return err


def wait_for_checkpoint(study: Study, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until some trial has written its first checkpoint (so faults hit trials mid-way)."""
    end = time.monotonic() + timeout
    while not list(study.runs.glob("*/trials/*/*/last.pt")) and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.2)


def mid_trial(study: Study) -> bool:
    """Whether some trial is mid-way: an unfinished trial's checkpoint was written within the last second."""
    import torch

    now = time.time()
    for p in study.runs.glob("*/trials/*/*/last.pt"):
        try:
            if now - p.stat().st_mtime < 1 and torch.load(p, weights_only=True).get("result") is None:
                return True
        except Exception:  # noqa: BLE001 — replaced while we read it
            continue
    return False


def kill_workers(folder: Path, small: bool) -> Row:
    """`kill -9` of a random local worker, each time after one more trial finished."""
    study, kills = Study(folder, points=4 if small else 32, epochs=8), 2 if small else 10
    row, t0 = Row("kill -9 local workers"), time.perf_counter()
    proc = study.start("--workers", "2")
    wait_for_checkpoint(study, proc)
    last = -1
    while row.faults < kills and proc.poll() is None:
        done, alive = study.finished(), workers(proc.pid)
        if done > last and alive and done < len(MODELS) * study.points - 2 and mid_trial(study):
            time.sleep(random.uniform(0, 0.5))
            victim = random.choice(workers(proc.pid) or [0])
            if victim:
                os.kill(victim, signal.SIGKILL)
                row.faults, last = row.faults + 1, done
        time.sleep(0.2)
    row = tally(study, row, finish(proc))
    row.seconds, row.note = time.perf_counter() - t0, f"{row.faults} workers killed"
    return row


def postgres_restart(folder: Path, small: bool) -> Row:
    """Stop the PostgreSQL server mid-study, keep it down, start it again."""
    row, down = Row("PostgreSQL restart"), 10 if small else 30
    pg = Path(tempfile.mkdtemp(prefix="rbvit-faults-pg-"))
    port = str(free_port())
    started = subprocess.run([str(CLUSTER / "postgres-local.sh"), "start", str(pg), port], capture_output=True,
                             text=True, timeout=120)
    if started.returncode != 0:
        shutil.rmtree(pg, ignore_errors=True)
        row.note = "skipped: PostgreSQL could not start here"
        return row
    try:
        study = Study(folder, points=2 if small else 8, epochs=4, storage=started.stdout.strip().splitlines()[-1])
        t0 = time.perf_counter()
        proc = study.start("--workers", "2")
        wait_for_checkpoint(study, proc)
        subprocess.run([str(CLUSTER / "postgres-local.sh"), "stop", str(pg)], capture_output=True, timeout=60)
        time.sleep(down)
        subprocess.run([str(CLUSTER / "postgres-local.sh"), "start", str(pg), port], capture_output=True,
                       timeout=120)
        row.faults = 1
        err = finish(proc)
        row = tally(study, row, err)
        waited = "yes" if "reachable again" in err else "no"
        row.seconds, row.note = time.perf_counter() - t0, f"down {down} s; waited out: {waited}"
    finally:
        subprocess.run([str(CLUSTER / "postgres-local.sh"), "stop", str(pg)], capture_output=True, timeout=60)
        shutil.rmtree(pg, ignore_errors=True)
    return row


def slurm_preemption(folder: Path, small: bool) -> Row:
    """Preempt running SLURM jobs as SLURM does (SIGTERM, then the requeue signal): they requeue and resume."""
    row = Row("SLURM preemption")
    if subprocess.run([str(CLUSTER / "slurm-local.sh"), "status"], capture_output=True, timeout=30).returncode:
        row.note = "skipped: no SLURM cluster up (tests/cluster/slurm-local.sh start)"
        return row
    study = Study(folder, points=2 if small else 4, epochs=12,
                  extra=["--executor", "slurm", "--slurm-partition", "debug", "--slurm-cpus", "1",
                         "--slurm-timeout-min", "20", "--slurm-option", "mem=1G"])
    t0, preempted = time.perf_counter(), set()
    proc = study.start()
    wait_for_checkpoint(study, proc)
    while len(preempted) < (1 if small else 3) and proc.poll() is None:
        jobs = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i", f"--name=rbv-{study.name}"],
                              capture_output=True, text=True).stdout.split()
        fresh = [j for j in jobs if j not in preempted]
        if fresh and mid_trial(study):  # preempt every running job: the one training that trial among them
            for job in fresh:
                for sig in ("SIGTERM", "USR2"):  # what submitit's SlurmJob._interrupt sends for a preemption
                    subprocess.run(["scancel", "--signal", sig, job], capture_output=True)
                preempted.add(job)
        time.sleep(0.5)
    row.faults = len(preempted)
    row = tally(study, row, finish(proc))
    row.seconds, row.note = time.perf_counter() - t0, f"{row.faults} jobs preempted"
    return row


def checkpoint_kills(folder: Path, small: bool) -> Row:
    """`kill -9` of a training process as soon as it starts writing a checkpoint; each time resumed."""
    import torch

    from robustbench_vit.models import ModelSpec
    from robustbench_vit.train import TrialConfig, run_trial

    kills, epochs = 2 if small else 5, 8
    row, t0, trial = Row("kill -9 during checkpoint write", planned=1), time.perf_counter(), folder / "trial"
    cmd = [sys.executable, "-m", "robustbench_vit.cli", "train", "--model", "vit_c_micro", "--epochs", str(epochs),
           "--batch-size", "256", "--threads", "1", "--trial-dir", str(trial), "--json"]
    mid_write = 0
    for _ in range(kills):  # each run lets one checkpoint land, then dies inside the next write
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        for write in range(2):
            while proc.poll() is None and not list(trial.glob("*.tmp")):
                pass  # busy-poll: a micro model's checkpoint write takes a few milliseconds
            while write == 0 and proc.poll() is None and list(trial.glob("*.tmp")):
                pass
        proc.kill()
        proc.wait()
        mid_write += bool(list(trial.glob("*.tmp")))
        for tmp in trial.glob("*.tmp"):
            tmp.unlink()  # what a later writer would leave alone; here: count each kill once
        row.faults += 1
    final = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    result = torch.load(trial / "last.pt", weights_only=True)["result"]  # with its history
    straight = run_trial(TrialConfig(model=ModelSpec.from_name("vit_c_micro"), epochs=epochs, batch_size=256,
                                     threads=1))
    row.finished = int(result["status"] == "complete")
    row.resumed = int(result["resumed_epochs"] > 0)
    row.identical = int(row.resumed and [(h["train_loss"], h["val_error"]) for h in result["history"]]
                        == [(h.train_loss, h.val_error) for h in straight.history])
    row.errors = sum(bool(ERRORS.search(line)) for line in final.stderr.splitlines())
    row.seconds, row.note = time.perf_counter() - t0, f"{kills} kills, {mid_write} inside a write"
    return row


def many_workers(folder: Path, small: bool) -> Row:
    """8 local workers (4 small) claiming 1-epoch trials from one SQLite file."""
    workers, points = (4, 8) if small else (8, 64)
    study, t0 = Study(folder, points=points, epochs=1), time.perf_counter()
    row = tally(study, Row(f"{workers} workers on SQLite"), finish(study.start("--workers", str(workers))))
    row.seconds, row.note = time.perf_counter() - t0, f"{len(MODELS) * points} trials"
    return row


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SCENARIOS = {"kill": kill_workers, "postgres": postgres_restart, "slurm": slurm_preemption,
             "checkpoint": checkpoint_kills, "workers": many_workers}


def table(rows: list[Row]) -> str:
    """The rows as a fixed-width table."""
    head = (f"{'scenario':32} {'planned':>7} {'finished':>8} {'lost':>4} {'twice':>5} {'resumed':>7} "
            f"{'identical':>9} {'errors':>6} {'wall s':>7}  note")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.scenario:32} {r.planned:7d} {r.finished:8d} {r.lost:4d} {r.twice:5d} {r.resumed:7d} "
                     f"{r.identical:9d} {r.errors:6d} {r.seconds:7.0f}  {r.note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="smaller counts (the test suite's run)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    random.seed(args.seed)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"--only {unknown[0]!r}: allowed {', '.join(SCENARIOS)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="rbvit-faults-") as scratch:
        for name in names:
            folder = Path(scratch) / name
            folder.mkdir()
            rows.append(SCENARIOS[name](folder, args.small))
            print(f"faults: {rows[-1].scenario} done in {rows[-1].seconds:.0f} s", file=sys.stderr, flush=True)
    print(table(rows))
    bad = [r for r in rows if r.planned and (r.lost or r.twice or r.errors or r.identical < r.resumed)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
