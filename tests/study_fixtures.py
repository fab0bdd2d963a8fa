"""Write Optuna studies exactly as the storage contract says, for analysis tests.

The trial *errors* are drawn from a smooth synthetic response surface (a bowl in log lr / log wd, with
divergence above an lr threshold) instead of real training, so analysis tests stay fast; the storage,
its studies, trials, states and user attributes are real Optuna objects. tests/test_report.py also builds
a report from a real trained study through the harness.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution

# per model: (best error, curvature per decade², log10 lr optimum, log10 lr above which it diverges)
SURFACE = {"vit_p_micro": (8.0, 14.0, -3.3, -2.2), "vit_c_micro": (5.0, 5.0, -3.0, -1.4),
           "mine<b>&": (6.0, 8.0, -3.1, -1.8), "regnety_micro": (4.0, 2.0, -2.8, -1.0)}
SGD_COST = {"regnety_micro": 0.0}  # points of error SGD adds over AdamW (3 for the ViTs: the CNN does not care)
STEP_MS = {"vit_p_micro": 10.0, "vit_c_micro": 10.5, "regnety_micro": 18.0}  # median training step, ms (12 default)


def model_attrs(model: str) -> dict:
    """The study's `model` attr: a ViT (conv stem where the name has `_c_`), or a RegNetY reference."""
    if model.startswith("regnety_"):
        return {"name": model, "size": "micro", "reference": "regnety"}
    return {"name": model, "size": "micro", "stem": "conv" if "_c_" in model else "patchify", "stem_options": {},
            "depth": 4 if model.startswith(("vit_p_", "vit_c_")) else 3}  # the baselines FLOP-match at depth 4


def _trial(study: str, model: str, point: int, seed: int, lr: float, wd: float, optimizer: str, epochs: int,
           rng: np.random.Generator) -> optuna.trial.FrozenTrial:
    """One finished trial with contract user attrs; error from the model's synthetic surface."""
    best, curv, lr_opt, lr_div = SURFACE[model]
    diverged = math.log10(lr) > lr_div
    error = min(90.0, best + curv * (math.log10(lr) - lr_opt) ** 2 + 1.5 * (math.log10(wd) + 1.3) ** 2
                + (SGD_COST.get(model, 3.0) if optimizer == "sgd" else 0.0) + 20.0 / epochs + rng.normal(0, 0.4))
    n_ep = 1 if diverged else epochs
    history = [{"epoch": k, "train_loss": 2.3 * math.exp(-k / 3) + error / 100, "lr": lr,
                "val_error": error + (90 - error) * math.exp(-k), "seconds": 0.5} for k in range(1, n_ep + 1)]
    final = 100.0 if diverged else history[-1]["val_error"]
    status = "diverged" if diverged else "complete"
    config = {"model": {"name": model, "size": "micro", "stem": "patchify", "stem_options": {}, "depth": 4},
              "dataset": "digits", "optimizer": optimizer, "lr": lr, "weight_decay": wd, "epochs": epochs,
              "batch_size": 128, "seed": seed}
    attrs = {"point": point, "seed": seed, "status": status, "final_error": final,
             "min_error": min(h["val_error"] for h in history) if not diverged else 100.0,
             "epochs_run": n_ep, "seconds": 0.5 * n_ep, "history": history, "config": config,
             "message": "loss exploded" if diverged else None, "host": "testhost", "commit": "abc1234",
             "versions": {"torch": "x"}, "params_count": 100_000, "gmacs": 0.01,
             "step_seconds": STEP_MS.get(model, 12.0) / 1000 * (1 + 0.02 * math.sin(7.3 * point + seed)),  # not from
             "device": "cpu"}  # `rng`: the errors' noise stream stays what it was
    params = {"lr": lr, "weight_decay": wd, "optimizer": optimizer}
    dists = {"lr": FloatDistribution(1e-5, 1e-1, log=True), "weight_decay": FloatDistribution(1e-4, 1.0, log=True),
             "optimizer": CategoricalDistribution(["adamw", "sgd"])}
    return optuna.trial.create_trial(params=params, distributions=dists, value=final, user_attrs=attrs)


def write_study(url: str, study: str, models=("vit_p_micro", "vit_c_micro"), *, points: int = 16, seeds: int = 1,
                design: str = "lr_wd", optimizers=("adamw",), epochs=(5,), failed: int = 0, running: int = 0,
                pending: int = 0, retried: int = 0, seed: int = 0) -> None:
    """Create one Optuna study per model with paired points (same lr, wd, optimizer, epochs, seed for all).

    `failed` / `running` / `pending` add that many extra slots in those states; `retried` gives the first slots
    a failed earlier attempt (as the harness's retries leave them).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    storage = optuna.storages.RDBStorage(url)
    if design == "lr":
        lrs, wds = np.logspace(-4.5, -1.5, points), np.full(points, 0.05)
    else:
        lrs, wds = 10 ** rng.uniform(-4.5, -1.5, points), 10 ** rng.uniform(-3, 0, points)
    grid = [(p, s, lrs[p], wds[p], o, ep) for p in range(points) for s in range(seeds)
            for o in optimizers for ep in epochs]
    for model in models:
        s = optuna.create_study(study_name=f"{study}/{model}", storage=storage, direction="minimize")
        for k, v in {"schema": 1, "study": study, "preset": None, "spec": {"name": study, "design": design,
                     "note": "<script>alert('x')</script>"},
                     "model": model_attrs(model)}.items():
            s.set_user_attr(k, v)
        mrng = np.random.default_rng(seed + 1)  # same noise stream per model: the difference is the surface
        for i, (p, sd, lr, wd, opt, ep) in enumerate(grid):
            if i < retried:  # an earlier attempt of the same slot that failed (the harness retried it)
                s.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, params={}, distributions={},
                                                      user_attrs={"point": p, "seed": sd, "status": "failed"}))
            s.add_trial(_trial(study, model, i if len(optimizers) * len(epochs) > 1 else p, sd, lr, wd, opt, ep,
                               mrng))
        for k in range(failed):
            s.add_trial(optuna.trial.create_trial(
                state=optuna.trial.TrialState.FAIL, params={}, distributions={},
                user_attrs={"point": points + k, "seed": 0, "status": "failed", "message": "CUDA OOM <x>"}))
        for k in range(running + pending):
            s.enqueue_trial({"lr": 1e-3}, user_attrs={"point": points + failed + k, "seed": 0})
        for _ in range(running):
            s.ask()
