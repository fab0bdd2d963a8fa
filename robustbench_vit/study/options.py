"""How a study runs, as typed values: RunOptions (where results live, which executor, how many workers) and
SlurmOptions (the SLURM job settings: a study's `slurm:` block with the --slurm-* flags merged over it).

Adding an option to every command that runs trials is one field here and one flag in `cli.add_run_options`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from robustbench_vit.errors import UserError, choices
from robustbench_vit.store import Results

EXECUTORS = ("auto", "inline", "local", "slurm")
# submitit's cluster-independent job settings, then SLURM-only ones (passed to submitit as slurm_<key>), and ours
SLURM_GENERIC = ("timeout_min", "mem_gb", "nodes", "cpus_per_task", "gpus_per_node", "tasks_per_node")
SLURM_ONLY = ("partition", "account", "qos", "constraint", "exclude", "nodelist", "gres", "mem_per_gpu",
              "mem_per_cpu", "cpus_per_gpu", "comment", "signal_delay_s", "array_parallelism", "exclusive",
              "additional_parameters", "srun_args", "setup", "wckey", "mail_type", "mail_user")
SLURM_KEYS = SLURM_GENERIC + SLURM_ONLY + ("ddp", "folder")
DEFAULT_TIMEOUT_MIN = 240
DEFAULT_CPUS = 4  # per job, when the study does not pin its CPU threads


def check_slurm_keys(keys) -> None:
    """ValueError naming the first key that is not a SLURM job setting (a typo must not surface after queueing)."""
    bad = sorted(set(keys) - set(SLURM_KEYS))
    if bad:
        raise ValueError(f"unknown SLURM setting {bad[0]!r}; allowed: {choices(SLURM_KEYS)}")


class SlurmOptions(BaseModel):
    """SLURM job settings; None: not set (submitit's or our default applies). `ddp`: one DDP rank per GPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_min: int | None = None
    mem_gb: float | None = None
    nodes: int | None = None
    cpus_per_task: int | None = None
    gpus_per_node: int | None = None
    tasks_per_node: int | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    nodelist: str | None = None
    gres: str | None = None
    mem_per_gpu: str | None = None
    mem_per_cpu: str | None = None
    cpus_per_gpu: int | None = None
    comment: str | None = None
    signal_delay_s: int | None = None
    array_parallelism: int | None = None
    exclusive: bool | str | None = None
    additional_parameters: dict[str, Any] | None = None  # extra sbatch options
    srun_args: list[str] | None = None
    setup: list[str] | None = None
    wckey: str | None = None
    mail_type: str | None = None
    mail_user: str | None = None
    ddp: bool | None = None
    folder: str | None = None  # submitit's logs (default: RUNS/STUDY/submitit)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, v: Any) -> Any:
        """An unknown key is named with the allowed ones (before pydantic's generic 'extra' error)."""
        if isinstance(v, dict):
            check_slurm_keys(v)
        return v

    def given(self) -> dict[str, Any]:
        """The settings that are set."""
        return self.model_dump(exclude_none=True)

    def over(self, base: SlurmOptions) -> SlurmOptions:
        """These settings merged over `base` (the flags over the study's `slurm:` block): the one merge."""
        return SlurmOptions(**{**base.given(), **self.given()})

    def submitit_parameters(self, threads: int | None, trials: int = 1) -> dict[str, Any]:
        """submitit's `update_parameters` keywords: our defaults (4 h; CPUs = the study's pinned threads, else 4)
        under these settings; `ddp` becomes one task per GPU, `trials` > 1 one task per trial worker (sharing the
        job's GPU and CPUs)."""
        merged = {"timeout_min": DEFAULT_TIMEOUT_MIN, "cpus_per_task": threads or DEFAULT_CPUS, **self.given()}
        merged.pop("folder", None)
        if trials > 1:  # the job's CPUs split over its trial workers
            merged.update(tasks_per_node=trials, cpus_per_task=max(1, merged["cpus_per_task"] // trials))
        if merged.pop("ddp", False):  # one task (DDP rank) per GPU
            merged.setdefault("tasks_per_node", merged.get("gpus_per_node", 1))
            merged.setdefault("srun_args", ["--kill-on-bad-exit=1"])  # a crashed rank ends its peers at once
        return {f"slurm_{k}" if k in SLURM_ONLY else k: v for k, v in merged.items()}


def parse_sbatch_options(items: list[str] | None) -> dict[str, str]:
    """`KEY=VALUE` strings (extra sbatch options) as a dict."""
    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UserError(f"--slurm-option {item!r}: expected KEY=VALUE (e.g. qos=high)")
        out[key] = value
    return out


class RunOptions(BaseModel):
    """Where a study's results live and how its trials run; the same for `study run`, `compare` and what follows.

    runs_dir: folder for the default SQLite storage, trial checkpoints and submitit logs.
    storage: an SQLAlchemy URL overriding the SQLite file (e.g. PostgreSQL, shared by several machines).
    executor: "inline" (this process), "local" (`workers` processes), "slurm" (job arrays), or "auto" (local
        when workers > 1, else inline).
    workers: local worker processes; None: trials_per_gpu per GPU, else as many as the study's pinned threads fit.
    trials_per_gpu: trial processes sharing each GPU (local: workers per GPU; SLURM: trial workers per
        one-GPU job), over the study's `trials_per_gpu`; None: the study's, else automatic (study/gpus.py).
    data_root: the dataset folder (cifar10/100, imagefolder), over the study's `data_root`.
    slurm: SLURM settings over the study's `slurm:` block.
    detach: (slurm only) submit the jobs and return without waiting.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    runs_dir: Path = Path("runs")
    storage: str | None = None
    executor: Literal["auto", "inline", "local", "slurm"] = "auto"
    workers: int | None = None
    trials_per_gpu: int | None = None
    data_root: str | None = None
    slurm: SlurmOptions = SlurmOptions()
    detach: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> RunOptions:
        """Workers and trials per GPU >= 1; --detach only where jobs outlive the command (SLURM)."""
        for name in ("workers", "trials_per_gpu"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.detach and self.executor != "slurm":
            got = self.kind(self.workers) if self.workers is not None else self.executor
            raise ValueError(f"--detach needs --executor slurm (local and inline trials run inside this process), "
                             f"got executor {got!r}")
        return self

    @classmethod
    def from_flags(cls, **fields: Any) -> RunOptions:
        """RunOptions from command-line values, or one UserError line naming the bad option (nothing written)."""
        try:
            return cls(**fields)
        except ValidationError as err:
            e = err.errors()[0]
            where = ".".join(str(x) for x in e["loc"])
            if e["type"] == "literal_error":
                raise UserError(f"{where} {e['input']!r} is not one of {choices(EXECUTORS)}") from None
            msg = e["msg"].removeprefix("Value error, ")
            raise UserError(f"{where}: {msg}" if where else msg) from None

    @property
    def results(self) -> Results:
        """Where this run's results live (runs folder and storage URL), as one value."""
        return Results.of(self.runs_dir, self.storage)

    def kind(self, workers: int) -> str:
        """The executor that runs: auto is local with several workers, else inline."""
        return ("local" if workers > 1 else "inline") if self.executor == "auto" else self.executor
