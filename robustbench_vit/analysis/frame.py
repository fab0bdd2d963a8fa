"""Trials of a study → one tidy pandas DataFrame (one row per model, point and seed), per the storage contract."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from robustbench_vit.errors import UserError
from robustbench_vit.models.complexity import model_complexity
from robustbench_vit.models.reference import REGNETY, TIMM_PREFIX
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.states import TRIAL_STATUSES, TrialStatus
from robustbench_vit.store import (Results, TrialRecord, read_studies, split_study_name, standing, study_urls,
                                   trial_state)

ERROR_CAP = 100.0  # trials that did not train (diverged, collapsed, stopped) count at this error (percent) everywhere
CHANCE_MARGIN = 5.0  # points: a finished trial whose error is within this of chance error is "collapsed"
# outcome classes: complete · collapsed (finished at chance) · diverged — the results — then failed (no result),
# and running / pending (not finished); storage knows complete / diverged / stopped / failed, collapsed is decided
# here; a `stopped` trial (stopped early at chance by the hopeless-trial rule, PRUNED in Optuna) is collapsed, with
# `stopped_early` True
STATUSES: tuple[TrialStatus, ...] = TRIAL_STATUSES  # states.TrialStatus
RESULTS: tuple[TrialStatus, ...] = STATUSES[:3]
DID_NOT_TRAIN: tuple[TrialStatus, ...] = ("collapsed", "diverged")
HYPERPARAMS = ("optimizer", "lr", "weight_decay", "epochs", "batch_size")  # always columns (from the config)
NUM_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100}  # image folders: counted from data_root/train


@dataclass
class StudyData:
    """What a report needs from storage: the trial table plus the study-level attributes."""

    name: str
    frame: pd.DataFrame
    storages: list[str]  # URLs, passwords masked
    spec: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> ModelSpec dump + depth, stem_source


def role(model: str) -> int:
    """A model's role in a comparison: 0 the patchify baseline, 1 the conv baseline, 2 a CNN reference (RegNetY, a
    timm model), 3 anything else (a user stem)."""
    return (0 if model.startswith("vit_p_") else 1 if model.startswith("vit_c_") else 2 if is_reference(model)
            else 3)


def model_order(models) -> list[str]:
    """Models in report order: the patchify baselines, the conv baselines, the CNN references, the rest, each sorted."""
    return sorted(set(models), key=lambda m: (role(m), m))


def is_baseline(model: str) -> bool:
    """Whether a model is one of the built-in baselines (`vit_p_*`, `vit_c_*`)."""
    return model.startswith(("vit_p_", "vit_c_"))


def is_reference(model: str) -> bool:
    """Whether a model is a CNN reference: a RegNetY (`regnety_*`) or a timm model (`timm:NAME`)."""
    return model.startswith((f"{REGNETY}_", TIMM_PREFIX))


def chance_error(num_classes) -> float:
    """Error of a classifier that learned nothing: 100·(1 − 1/classes); the cap where classes are unknown."""
    return 100.0 * (1 - 1 / num_classes) if num_classes and num_classes == num_classes else ERROR_CAP


def collapsed(error: float, num_classes) -> bool:
    """Whether a finished trial's error is no better than chance (within CHANCE_MARGIN points of it)."""
    return error >= chance_error(num_classes) - CHANCE_MARGIN


def _num_classes(config: dict[str, Any]) -> int | None:
    """Number of classes of a trial's dataset where the trial did not store it (trials of older versions)."""
    dataset = str(config.get("dataset", "")).lower()
    if dataset in NUM_CLASSES:
        return NUM_CLASSES[dataset]
    root = config.get("data_root")
    train = Path(root) / "train" if root else None
    return sum(p.is_dir() for p in train.iterdir()) if train and train.is_dir() else None


def _costs(model: dict[str, Any]) -> tuple[int | None, int | None]:
    """The trunk depth of a model (its spec's, else the built model's FLOP-matched one) and its activations, measured
    here (None where the model no longer builds)."""
    depth = int(model["depth"]) if model.get("depth") is not None else None
    try:
        cx = model_complexity(ModelSpec(**model))
    except Exception:  # a user stem that no longer imports here must not stop the analysis
        return depth, None
    return (cx.depth if depth is None else depth), cx.activations


def _row(study: str, model: dict[str, Any], t: optuna.trial.FrozenTrial, *, url: str) -> dict:
    """One trial as a flat record: error at the cap where it did not train, NaN where there is no result."""
    rec, status = TrialRecord.read(t), trial_state(t)
    config = rec.config
    classes = rec.num_classes or _num_classes(config)
    final = float(rec.final_error if rec.final_error is not None else t.value if t.value is not None else ERROR_CAP)
    stopped = status == "stopped"  # at chance at every epoch until the rule stopped it: did not train
    if stopped or (status == "complete" and collapsed(final, classes)):
        status = "collapsed"
    error = final if status == "complete" else ERROR_CAP if status in DID_NOT_TRAIN else math.nan
    if status in ("running", "pending"):
        final = math.nan
    return {"study": study, "model": model["name"], "stem": model.get("stem"), "size": model.get("size"),
            "depth": model.get("depth"), **{k: config.get(k) for k in HYPERPARAMS}, **t.params,
            "lr_trained": config.get("lr"), "weight_decay_trained": config.get("weight_decay"),  # × the model's scale
            "seed": t.user_attrs.get("seed", config.get("seed")), "point": t.user_attrs.get("point"),
            "status": status, "setting_seed": config.get("seed"), "init_seed": config.get("init_seed"),
            "error": error, "final_error": final,
            "min_error": float(rec.min_error if rec.min_error is not None else error),
            "epochs_run": rec.epochs_run, "stopped_early": stopped, "seconds": rec.seconds, "host": rec.host,
            "commit": rec.commit, "number": t.number, "datetime_start": t.datetime_start,
            "datetime_complete": t.datetime_complete, "params_count": rec.params_count, "gmacs": rec.gmacs,
            "activations": model.get("activations"), "step_seconds": rec.step_seconds, "device": rec.device,
            "dataset": config.get("dataset"), "num_classes": classes, "message": rec.message,
            "history": list(rec.history), "storage": url}


def _collect(study: str, opened: list[tuple[str, optuna.Study]]) -> StudyData:
    """Build the trial table and the study attributes from opened Optuna studies."""
    rows, models, spec, preset, searched = [], {}, {}, None, set()
    for url, s in opened:
        attrs = s.user_attrs
        model = attrs.get("model") or {"name": split_study_name(s.study_name)[1]}
        if model["name"] not in models:
            depth, activations = _costs(model)
            models[model["name"]] = dict(model, depth=depth, activations=activations,
                                         stem_source=attrs.get("stem_source"))
        spec, preset = spec or attrs.get("spec") or {}, preset or attrs.get("preset")
        trials = s.get_trials(deepcopy=False)
        searched |= {k for t in trials for k in t.params}
        rows += [_row(study, models[model["name"]], t, url=url) | {"attempts": n} for t, n in standing(trials)]
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=["study", "model", "status", "error", "history"])
    else:
        df = df.sort_values(["model", "point", "seed", "number"], na_position="last", kind="stable")
        df = df.reset_index(drop=True)
    df.attrs["searched"] = sorted(searched)  # the searched hyperparameters: with seed, they define a setting
    design = spec.get("design")
    df.attrs["design"] = design.get("kind") if isinstance(design, dict) else None  # "tpe": adaptive
    df.attrs["margins"] = spec.get("margins") or {}  # δ per decided statistic (comparison.MARGINS by default)
    urls = sorted({u for u, _ in opened})
    return StudyData(name=study, frame=df, storages=urls, spec=spec, preset=preset, models=models)


def load_study_data(study: str, results: Results | None = None) -> StudyData:
    """Read every `<study>/<model>` Optuna study from where the results live (default: runs/) into a StudyData."""
    return _collect(study, read_studies(study, study_urls(study, results or Results())))


def load_results(study: str, results: Results | None = None) -> pd.DataFrame:
    """All trials of a study, one tidy row per (model, point, seed) (UserError for an unknown study).

    Where the harness retried a slot, the attempt that stands is the row and `attempts` counts them all.
    """
    return load_study_data(study, results).frame


def curves(df: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch curves in long form: one row per (trial, epoch) with the trial's identifying columns."""
    keys = [c for c in ("study", "model", "number", "point", "seed", "setting_seed", "init_seed", "status", "error",
                        *HYPERPARAMS) if c in df]
    rename = {"lr": "lr_epoch", "seconds": "seconds_epoch"}  # the epoch's lr / time, not the trial's
    rows = [{**{k: r[k] for k in keys}, **{rename.get(k, k): v for k, v in rec.items()}}
            for _, r in df.iterrows() for rec in r["history"]]
    return pd.DataFrame(rows, columns=keys + ["epoch", "train_loss", "val_error", "lr_epoch", "seconds_epoch"])


def export_results(study: str, out: str | Path, results: Results | None = None) -> Path:
    """Write the trial table as CSV (history as JSON text) or Parquet (history nested), by the file's extension."""
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"--out {out}: unknown extension {out.suffix!r} (allowed: .csv, .parquet)")
    df = load_results(study, results)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        df.assign(history=df["history"].map(json.dumps)).to_csv(out, index=False)
    else:
        df.to_parquet(out, index=False)
    return out
