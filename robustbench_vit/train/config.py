"""Typed trial configuration and result: everything a worker needs travels in a TrialConfig."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.states import ResultStatus



class TrialConfig(BaseModel):
    """One trial: a pure function of these fields (same config and seed give the same result)."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: ModelSpec
    dataset: str = "digits"
    data_root: str | None = None
    # fashion_mnist: train on a fixed stratified subset of this many images (nested: smaller subsets lie inside
    # larger ones); None: all of them. Other datasets refuse it (data.load_dataset)
    train_subset: int | None = Field(None, ge=10)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)  # 64: enough steps for short CPU runs
    warmup_epochs: float = Field(1.0, ge=0)
    warmup_lr_ratio: float = Field(0.1, gt=0, le=1)  # warmup starts at this × lr
    min_lr_ratio: float = Field(0.005, ge=0, le=1)  # cosine ends at this × lr
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    mixup: float = Field(0.0, ge=0)
    cutmix: float = Field(0.0, ge=0)
    ema_decay: float | None = Field(None, gt=0, lt=1)
    augment: bool = False  # tensor crop/flip (CIFAR), ±1 px shifts (digits); off: it underfits short runs
    grad_clip: float | None = Field(None, gt=0)
    diverge_factor: float = Field(5.0, gt=1)  # stop when loss > factor × first epoch's loss
    stop_hopeless: bool = True  # stop a trial whose val error stayed at chance for its first epochs (loop.hopeless)
    seed: int = 0  # the setting's seed: data order, augmentation, mixup (shared by the models of a setting)
    init_seed: int | None = None  # the model's initial weights; None: `seed` (a study derives one per model)
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    compile: bool = False  # torch.compile, CUDA only
    amp: bool = True  # bf16 autocast, CUDA only
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    extra: dict[str, Any] = Field(default_factory=dict)  # free-form tags (not read by training)

    @field_validator("optimizer", mode="before")
    @classmethod
    def _lower(cls, v: str) -> str:
        """Accept any case for the optimizer name."""
        return v.lower() if isinstance(v, str) else v


class EpochRecord(BaseModel):
    """What one epoch measured."""

    epoch: int
    train_loss: float
    val_error: float  # top-1 error in percent
    lr: float
    seconds: float


class TrialResult(BaseModel):
    """What one trial returns; diverged and stopped trials count at error 100."""

    model_config = ConfigDict(protected_namespaces=())

    status: ResultStatus
    final_error: float  # percent; 100 for diverged / stopped / failed
    min_error: float  # percent; min over epochs (100 for diverged / failed without epochs)
    epochs_run: int
    seconds: float
    history: list[EpochRecord] = Field(default_factory=list)
    message: str | None = None  # why it diverged / stopped / failed
    resumed_epochs: int = 0  # epochs restored from a checkpoint when this run began (0: trained from the start)
    first_step_seconds: float | None = None  # from this run's start to its first optimizer step (data, model, compile)
    step_seconds: float | None = None  # median training step over this run's warm steps (loop.StepClock), on `device`
    params: int | None = None
    gmacs: float | None = None
    device: str | None = None
    num_classes: int | None = None  # of the dataset: chance error is 100·(1 − 1/num_classes)
