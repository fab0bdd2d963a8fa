"""Study specs: the built-in YAML studies and presets load; bad input is one line naming file and field, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustbench_vit.cli import main
from robustbench_vit.errors import UserError
from robustbench_vit.study.files import list_specs, load_spec
from robustbench_vit.study.plan import plan, trial_config, trial_count

BUILTINS = ["epoch_stability", "lr_sensitivity", "lr_wd_stability", "optimizer_stability", "peak", "wd_sensitivity"]


def test_builtin_studies_and_presets_load():
    """Every built-in study loads with its default, cifar, fashion and paper preset; the default is CPU digits micro;
    fashion is the micro models on a fixed 5,000-image Fashion-MNIST subset, CPU-sized."""
    assert BUILTINS == [p.stem for p in list_specs() if p.stem in BUILTINS]
    for name in BUILTINS:
        spec = load_spec(name)
        assert (spec.dataset, {m.size for m in spec.models}) == ("digits", {"micro"})
        ref = ["regnety_micro"] if name in CLAIM_STUDIES else []  # the CNN reference rides along in every preset
        assert [m.name for m in spec.models] == ["vit_p_micro", "vit_c_micro", *ref]
        assert 4 <= trial_count(spec) <= 32  # minutes on 2 cores (a micro trial takes ~8 s)
        cifar, paper, fashion = load_spec(name, "cifar"), load_spec(name, "paper"), load_spec(name, "fashion")
        assert (fashion.name, fashion.dataset, fashion.train["train_subset"]) == (f"{name}-fashion", "fashion_mnist",
                                                                                  5000)
        assert [m.name for m in fashion.models] == [m.name for m in spec.models]
        assert 4 <= trial_count(fashion) <= 16 and fashion.device == "auto"  # per model: 6-10 minutes on 2 cores
        assert cifar.dataset == "cifar10" and {m.size for m in cifar.models} == {"tiny"}
        refs = {"regnety_1gf", "regnety_4gf"} if name in CLAIM_STUDIES else set()
        assert {m.name for m in paper.models} == {"vit_p_1gf", "vit_c_1gf", "vit_p_4gf", "vit_c_4gf", *refs}
        assert {m.name for m in cifar.models} == {"vit_p_tiny", "vit_c_tiny", *(["regnety_tiny"] if ref else [])}
        recipe = {"batch_size": 2048, "warmup_epochs": 5, "label_smoothing": 0.1, "mixup": 0.8, "cutmix": 1.0,
                  "threads": None, "device": "cuda"}
        assert {k: paper.train[k] for k in recipe if k not in paper.space} == {
            k: v for k, v in recipe.items() if k not in paper.space}
        assert paper.dataset == "imagefolder" and paper.train["ema_decay"]
        assert not set(paper.train) & set(paper.space)  # a searched setting is never also fixed
    assert trial_count(load_spec("lr_wd_stability", "paper")) == 64
    assert sorted(p.params["epochs"] for p in plan(load_spec("epoch_stability", "paper"))) == [50, 100, 200, 400]


CLAIM_STUDIES = ("lr_wd_stability", "optimizer_stability", "epoch_stability")


def test_a_reference_and_a_scale_map_one_design_into_each_models_range():
    """optimizer_stability runs RegNetY beside the ViTs; each point's lr and wd reach RegNetY times the paper's
    ratio for its optimizer (AdamW 5 and 0.3, SGD 2.5 and 0.7) while the ViTs train at the point itself, on the
    same setting seed (paired) and each from its own init."""
    spec = load_spec("optimizer_stability")
    assert spec.factors("regnety_micro", "sgd") == {"lr": 2.5, "weight_decay": 0.7}
    assert spec.factors("regnety_micro_aa1", "adamw") == {"lr": 5.0, "weight_decay": 0.3}  # A/A copies share it
    assert spec.factors("vit_c_micro", "sgd") == {}
    for opt, (f_lr, f_wd) in (("adamw", (5, 0.3)), ("sgd", (2.5, 0.7))):
        point = next(p for p in plan(spec) if p.params["optimizer"] == opt)
        cfg = {m.name: trial_config(spec, m, point.params, point=point.index, replicate=0) for m in spec.models}
        vit, cnn = cfg["vit_p_micro"], cfg["regnety_micro"]
        assert (vit.lr, vit.weight_decay) == (point.params["lr"], point.params["weight_decay"])
        assert (cnn.lr, cnn.weight_decay) == pytest.approx((f_lr * vit.lr, f_wd * vit.weight_decay))
        assert vit.seed == cnn.seed and vit.init_seed != cnn.init_seed
    epochs = load_spec("epoch_stability")  # one lr, searched so that RegNetY trains at its own (5x)
    point = plan(epochs)[0]
    ref = next(m for m in epochs.models if m.name == "regnety_micro")
    assert trial_config(epochs, ref, point.params, point=0, replicate=0).lr == pytest.approx(5 * 2.0e-3)


BAD = {
    "design:\n  kind: gird\n": "field 'design.kind': 'gird' is not one of grid, random, quasirandom, tpe",
    "design:\n  kinds: grid\n": "field 'design.kinds': unknown field; allowed: kind, points, seed, seeds, stratify",
    "models: [vit_x_micro]\n": "field 'models': unknown model 'vit_x_micro'; allowed: vit_p_micro",
    "train: {lrr: 1}\n": "field 'train': unknown training setting 'lrr'; allowed: amp",
    "slurm: {partiton: gpu}\n": "field 'slurm': unknown SLURM setting 'partiton'; allowed: account, additional_param",
    "dataset: mnist\n": "field 'dataset': dataset 'mnist' is unknown; allowed: cifar10, cifar100, digits, "
                        "fashion_mnist, imagefolder",
    "space:\n  lr: {low: 0.0, high: 1.0, num: 3}\n": "point 2 {'lr': 0.0} gives an invalid training setting 'lr'",
    "space:\n  lr: {low: 1.0e-3, high: 1.0, log: true}\n": "field 'space.lr': grid designs need num (or values)",
    "scale:\n  regnetx: {lr: 2}\n": "field 'scale.regnetx': matches no model of the study (vit_c_micro, vit_p_micro) and "
                                    "is not a built-in family (regnety, vit_c, vit_p)",
    "scale:\n  vit_p: {epochs: 2}\n": "field 'scale.vit_p.epochs': not a real-valued searched dim (lr)",
    "scale:\n  vit_p: {lr: {adam: 2}}\n": "field 'scale.vit_p.lr': 'adam' is not an optimizer (adamw, sgd)",
    "scale:\n  vit_p: {lr: 0}\n": "field 'scale.vit_p.lr': factors must be > 0",
}


@pytest.mark.parametrize("body", list(BAD))
def test_bad_spec_is_one_line_and_writes_nothing(body, tmp_path, capsys):
    """The CLI exits 2 with one line: the file, the field, the bad value and what is allowed; no runs folder."""
    base = "models: [vit_p_micro, vit_c_micro]\nspace:\n  lr: {low: 1.0e-3, high: 1.0, log: true, num: 2}\n"
    text = base + body if not body.startswith(("space", "models")) else base.split("space:")[0].replace(
        "models: [vit_p_micro, vit_c_micro]\n", "" if body.startswith("models") else "models: [vit_p_micro]\n") + body
    if body.startswith("models"):
        text += "space:\n  lr: {low: 1.0e-3, high: 1.0, log: true, num: 2}\n"
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    runs = tmp_path / "runs"
    assert main(["study", "run", str(path), "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and BAD[body] in err, err
    assert not runs.exists()


def test_unknown_preset_and_study(tmp_path):
    """An unknown preset lists the presets; an unknown study name lists the known ones."""
    with pytest.raises(UserError, match=r"preset 'gpu' is not one of cifar, fashion, paper"):
        load_spec("lr_sensitivity", "gpu")
    with pytest.raises(UserError, match=r"study 'lr_sensitivty' not found .* known: .*lr_sensitivity"):
        load_spec("lr_sensitivty")


def test_local_studies_folder_and_user_stems(tmp_path, monkeypatch):
    """./studies/NAME.yaml is found by name; user stems become ModelSpecs of the study's size; presets deep-merge."""
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "mine.yaml").write_text(
        "models: [vit_p_micro]\nstems:\n  - {name: my_stem, path: 'stems.py:MyStem', options: {width: 8}}\n"
        "train: {epochs: 3, weight_decay: 0.1}\nspace:\n  lr: {values: [0.001, 0.01]}\n"
        "presets:\n  long: {train: {epochs: 30}}\n")
    monkeypatch.chdir(tmp_path)
    spec = load_spec("mine", "long")
    assert [(m.name, m.size, m.stem, m.stem_options) for m in spec.models] == [
        ("vit_p_micro", "micro", "patchify", {}), ("my_stem", "micro", "stems.py:MyStem", {"width": 8})]
    assert spec.train == {"epochs": 30, "weight_decay": 0.1} and spec.preset == "long"
    assert (spec.name, load_spec("mine").name) == ("mine-long", "mine")  # a preset's results live beside the default's
    assert Path(spec.source).resolve() == (tmp_path / "studies" / "mine.yaml").resolve()
    (tmp_path / "studies" / "stems.py").write_text("")  # a stem file beside the study: found from anywhere
    assert load_spec("mine").models[1].stem == f"{(tmp_path / 'studies' / 'stems.py').resolve()}:MyStem"


def test_study_list_takes_no_storage_options(capsys):
    """`study list` lists study files, not storages: --runs-dir / --storage are refused instead of ignored."""
    for option in ("--runs-dir", "--storage"):
        with pytest.raises(SystemExit) as e:
            main(["study", "list", option, "x"])
        assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
