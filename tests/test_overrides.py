"""`--set KEY=VALUE` overrides and `--dry-run` on the commands that run trials: real studies, real SQLite storage."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from robustbench_vit.cli import main
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.overrides import parse_overrides

STEM = str(Path(__file__).resolve().parents[1] / "examples" / "overlap_stem.py") + ":OverlapPatchStem"
SMALL = ["--set", "design.points=2", "--set", "train.epochs=1"]


@pytest.fixture
def here(tmp_path, monkeypatch):
    """An empty working folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_overrides_run_as_their_own_study_with_the_overrides_stored(here, capsys):
    """The acceptance run: 2 points x 3 models (the ViTs and their RegNetY) of 1 epoch = 6 trials, under
    NAME-PRESET-set-HASH, the overrides in the stored spec; again with the same overrides (in another order) runs
    nothing."""
    args = ["study", "run", "lr_wd_stability", "--preset", "quick", *SMALL, "--workers", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    name = load_spec("lr_wd_stability", "quick", parse_overrides(SMALL[1::2])).name
    assert name.startswith("lr_wd_stability-quick-set-") and f"{name}: 6/6 trials finished" in out, out
    assert "6 ran now" in out and f"next: robustbench-vit report {name}" in out
    study = optuna.load_study(study_name=f"{name}/vit_c_micro", storage=f"sqlite:///runs/{name}/study.db")
    spec = study.user_attrs["spec"]
    assert spec["overrides"] == {"design.points": 2, "train.epochs": 1} and spec["design"]["points"] == 2
    assert {t.user_attrs["epochs_run"] for t in study.trials} == {1} and study.user_attrs["preset"] == "quick"
    assert main(["study", "run", "lr_wd_stability", "--preset", "quick", *SMALL[2:], *SMALL[:2], "--workers", "1"]) == 0
    assert "0 ran now" in capsys.readouterr().out


def test_different_overrides_are_different_studies():
    def name(*items: str) -> str:
        return load_spec("lr_wd_stability", None, parse_overrides(list(items))).name

    assert name() == "lr_wd_stability"
    assert len({name("train.epochs=1"), name("train.epochs=2"), name("train.epochs=1", "design.points=2")}) == 3
    assert name("design.points=2", "train.epochs=1") == name("train.epochs=1", "design.points=2")
    spec = load_spec("lr_wd_stability", None, parse_overrides(["space.lr.high=1e-2", "train.augment=true",
                                                               "models=[vit_p_micro]"]))
    assert spec.space["lr"].high == 0.01 and spec.train["augment"] is True  # YAML values; 1e-2 a float
    assert [m.name for m in spec.models] == ["vit_p_micro", "regnety_micro"]  # the study's reference rides along
    alone = load_spec("lr_wd_stability", None, parse_overrides(["models=[vit_p_micro]", "reference=null"]))
    assert [m.name for m in alone.models] == ["vit_p_micro"]


@pytest.mark.parametrize("item, message", [
    ("train.no_such_field=1", "--set train.no_such_field: unknown setting 'no_such_field' under 'train'; "
                              "allowed: amp, augment, batch_size,"),
    ("no_such_field=1", "--set no_such_field: unknown key 'no_such_field'; allowed: budget, data_root, dataset,"),
    ("design.pionts=2", "--set design.pionts: unknown key 'pionts' under 'design'; allowed: kind, points, seed,"),
    ("space.lr.hihg=1", "--set space.lr.hihg: unknown key 'hihg' of a searched dim; allowed: choices, high,"),
    ("design.kind=sobol", "--set design.kind: 'sobol' is not one of grid, random, quasirandom, tpe"),
    ("design.points=0", "--set design.points: Input should be greater than or equal to 1"),
    ("space.lr.high=1e-5", "with --set space.lr.high: field 'space.lr': low 0.0001 > high 1e-05"),
    ("train.epochs=0", "with --set train.epochs: point 0"),
    ("name=other", "--set name: unknown key 'name'; allowed:"),
    ("design.points", "--set 'design.points': expected KEY=VALUE"),
])
@pytest.mark.parametrize("command", [["study", "run", "lr_wd_stability"], ["compare", "--stem", STEM],
                                     ["reproduce", "--claims", "adamw_lr_wd"]])
def test_a_bad_override_is_one_line_exit_2_and_nothing_written(command, item, message, here, capsys):
    assert main([*command, "--set", item]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert message in lines[-1] and lines[-1].startswith("robustbench-vit: error: "), err
    assert len(lines) == 1 or command[0] == "compare"  # compare --stem prints the stem's table first
    assert list(here.iterdir()) == []


def test_dry_run_prints_the_plan_and_writes_nothing(here, capsys):
    assert main(["study", "run", "lr_wd_stability", "--preset", "quick", *SMALL, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(": 3 model(s) x 2 point(s) x 1 seed(s) = 6 trials, 6 trial-epochs (vit_p_micro, "
                           "vit_c_micro, regnety_micro)"), out
    assert out[1].startswith("plan: 6 trials, 6 trial-epochs, about ") and "on this CPU with" in out[1], out
    assert main(["compare", "--stem", STEM, *SMALL, "--dry-run"]) == 0
    assert "4 model(s) x 2 point(s) x 1 seed(s) = 8 trials" in capsys.readouterr().out  # and RegNetY
    assert main(["reproduce", "--preset", "paper", "--dry-run"]) == 0  # no --yes needed to look
    out = capsys.readouterr().out
    # 384 AdamW + 192 optimizer (both with RegNetY) + 48 epoch_stability trials (its RegNetY is no claim's)
    assert "plan: 624 trials" in out and "GPU-hours at 100 TFLOP/s per GPU" in out, out
    assert list(here.iterdir()) == []


def test_compare_claims_at_paper_scale_takes_yes(here, capsys):
    """Off a terminal the paper preset's ~500 GPU-hours ask for --yes; with it, compare --claims goes on (and stops
    at the missing ImageNet folder here, before anything is written)."""
    args = ["compare", "--stem", STEM, "--claims", "--preset", "paper"]
    assert main(args) == 2
    assert capsys.readouterr().err.strip().endswith("(over 100): pass --yes to launch")
    assert main([*args, "--yes"]) == 2
    assert "dataset imagefolder needs --data-root" in capsys.readouterr().err
    assert list(here.iterdir()) == []
