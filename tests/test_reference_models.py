"""Reference models: RegNetY at pycls's configs (checked against pycls's counting rule and the paper's GF), any timm
model by name, activations as the paper counts them, and references trained through the trainer and a real study."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from timm.models.regnet import SEModule

from robustbench_vit.analysis.frame import load_results
from robustbench_vit.analysis.leaderboard import study_rows
from robustbench_vit.analysis.metrics import model_metrics
from robustbench_vit.analysis.summary import metrics_table
from robustbench_vit.cli import main
from robustbench_vit.errors import UserError
from robustbench_vit.models import REGNETY_CONFIGS, ModelSpec, build_model, count_costs, model_complexity
from robustbench_vit.store import Results
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions
from robustbench_vit.train import TrialConfig, run_trial


def pycls_regnet(depth: int, w0: int, wa: float, wm: float, group: int) -> tuple[list[int], list[int]]:
    """pycls's generate_regnet + adjust_block_compat (bottleneck 1, q 8): (depths, widths) per stage, in numpy."""
    ws = w0 * np.power(wm, np.round(np.log((np.arange(depth) * wa + w0) / w0) / np.log(wm)))
    widths, depths = np.unique(np.round(ws / 8) * 8, return_counts=True)
    return depths.tolist(), [int(round(w / min(group, w)) * min(group, w)) for w in widths]


def pycls_counts(depths, widths, group: int, img: int, classes: int = 1000) -> tuple[int, int, int]:
    """(params, MACs, activations) by pycls's rule (pycls/models/anynet.py `complexity`): simple_stem_in 3→32, then
    res_bottleneck_block stages (stride 2, bottleneck 1, SE 0.25 of the block's input), then the fc head."""
    side, w_in = img // 2, 32
    params, macs, acts = 27 * 32 + 64, side * side * 27 * 32, side * side * 32
    for d, w in zip(depths, widths):
        for i in range(d):
            s, g, se = (2 if i == 0 else 1), w // min(group, w), round(w_in * 0.25)
            out = side // s
            params += w_in * w + 9 * w * w // g + 2 * w * se + se + w + w * w + 6 * w
            macs += side * side * w_in * w + out * out * (9 * w * w // g + w * w) + 2 * w * se
            acts += side * side * w + out * out * 2 * w + se + w
            if s != 1 or w_in != w:
                params, macs, acts = params + w_in * w + 2 * w, macs + out * out * w_in * w, acts + out * out * w
            side, w_in = out, w
    return params + w_in * classes + classes, macs + w_in * classes, acts + classes


def stages(size: str) -> tuple[list[int], list[int]]:
    """The config's per-stage (depths, widths), as pycls would generate them."""
    c = REGNETY_CONFIGS[size]
    return pycls_regnet(*c.regnet, c.group_width) if c.regnet else (list(c.depths), list(c.widths))


# The name's GF holds at pycls's training resolution (TRAIN.IM_SIZE of configs/vitconv_baselines/regnety/*.yaml):
# 1.0GF at 232 px, 4.0GF at 240 px. At our 224 px they are 0.894 and 3.53 GMACs, 9.60 M and 22.41 M params. pycls's
# MODEL_ZOO (the DDS RegNetY-800MF: 0.8 GF, 6.3 M; RegNetY-4.0GF: 4.0 GF, 20.6 M, 12.3 M acts, all at 224 px) lists
# other configs of the same names (4.0GF there: depth 22, w0 96, wa 31.41, wm 2.24, group 64), so their params differ.
PAPER_GF = {"1gf": (1.0, 232), "4gf": (4.0, 240)}


@pytest.mark.parametrize("size", ["1gf", "4gf"])
def test_regnety_1gf_and_4gf_are_pyclss_configs(size):
    spec = ModelSpec.from_name(f"regnety_{size}")
    cx = model_complexity(spec)
    depths, widths = stages(size)
    params, macs, acts = pycls_counts(depths, widths, REGNETY_CONFIGS[size].group_width, 224)
    assert cx.params == params  # timm's RegNet built exactly pycls's network
    assert cx.gmacs == pytest.approx(macs / 1e9, rel=2e-3)  # pycls counts SE's pooling and biases a little apart
    assert cx.activations == pytest.approx(acts, rel=0.02)
    assert cx.depth == sum(depths) and cx.flop_ratio < 1  # not FLOP-matched: below ViT_P at 224 px
    gf, img = PAPER_GF[size]
    with torch.device("meta"):
        model = build_model(spec)
    assert count_costs(model, img, 3)[0] == pytest.approx(gf, rel=0.05)  # the paper's GF, at pycls's resolution


def test_regnety_16gf_and_32gf_are_the_18gf_and_36gf_sizes_references():
    for name, size, ref in (("regnety_16gf", "18gf", "RegNetY-16GF"), ("regnety_32gf", "36gf", "RegNetY-32GF")):
        spec = ModelSpec.from_name(name)
        assert (spec.size, spec.reference, spec.stem, REGNETY_CONFIGS[size].name) == (size, "regnety", "", ref)
        params, _, _ = pycls_counts(*stages(size), REGNETY_CONFIGS[size].group_width, 224)
        assert model_complexity(spec).params == params
    assert ModelSpec.from_name("regnety_18gf").size == "18gf"  # regnety_<size> names every size too


@pytest.mark.parametrize("size", ["micro", "tiny"])
def test_small_regnety_has_se_and_group_convs_near_vit_p_flops(size):
    spec = ModelSpec.from_name(f"regnety_{size}")
    cx = model_complexity(spec)
    assert 0.7 < cx.flop_ratio < 1.05  # the nearest of bench_runtime.py --search's grid (0.77× micro, 0.96× tiny)
    model = build_model(spec)
    assert any(isinstance(m, SEModule) for m in model.modules())
    assert any(isinstance(m, torch.nn.Conv2d) and m.groups > 1 for m in model.modules())
    img, ch = (16, 1) if size == "micro" else (32, 3)
    assert model(torch.randn(2, ch, img, img)).shape == (2, 10)


# The paper's Table 1 (activations, M) of the ViTs: ViT_P / ViT_C.
PAPER_ACTS = {"1gf": (5.5, 5.7), "4gf": (11.1, 11.3), "18gf": (24.0, 24.1), "36gf": (37.3, 36.7)}


@pytest.mark.parametrize("size", sorted(PAPER_ACTS))
def test_vit_activations_match_the_papers_table_1(size):
    for k, paper in zip("pc", PAPER_ACTS[size]):
        assert model_complexity(ModelSpec.from_name(f"vit_{k}_{size}")).activations / 1e6 == pytest.approx(paper,
                                                                                                            rel=0.03)


def test_activations_count_every_conv_and_matmul_output():
    # vit_p_micro: 16 tokens + cls of width 64, 2 heads; per block qkv, q·kᵀ, attn·v, proj, fc1, fc2; stem and head.
    per_block = 17 * 3 * 64 + 2 * 17 * 17 + 17 * 64 + 17 * 64 + 17 * 128 + 17 * 64
    assert model_complexity(ModelSpec.from_name("vit_p_micro")).activations == 16 * 64 + 4 * per_block + 10


def test_timm_model_takes_the_studys_size_and_unknown_names_are_refused(tmp_path, capsys):
    ok = tmp_path / "refs.yaml"
    ok.write_text("models: [vit_p_micro, timm:resnet18]\ntrain: {epochs: 1, batch_size: 256, threads: 1}\n"
                  "space:\n  lr: {values: [0.001]}\ndesign: {kind: grid}\n")
    spec = load_spec(str(ok))
    ref = spec.models[1]
    assert (ref.name, ref.size, ref.reference, ref.stem) == ("timm:resnet18", "micro", "timm:resnet18", "")
    cx = model_complexity(ref)
    assert cx.params == 11_175_370 and cx.flop_ratio > 5  # resnet18 at 1×16×16, 10 classes: not FLOP-matched
    bad = tmp_path / "bad.yaml"
    bad.write_text(ok.read_text().replace("resnet18", "no_such_model"))
    runs = tmp_path / "runs"
    assert main(["study", "run", str(bad), "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "field 'models': unknown timm model 'no_such_model'" in err
    assert "timm.list_models()" in err and not runs.exists()
    with pytest.raises(UserError, match="unknown timm model"):
        ModelSpec.from_name("timm:no_such_model")
    assert main(["study", "run", str(ok), "--runs-dir", str(runs), "--workers", "1"]) == 0  # and it runs a study
    assert "refs: 2/2 trials finished (2 complete" in capsys.readouterr().out


def test_regnety_micro_trains_and_times_its_steps():
    r = run_trial(TrialConfig(model=ModelSpec.from_name("regnety_micro"), epochs=1, batch_size=128, threads=1))
    assert r.status in ("complete", "stopped") and r.params == 135_966 and r.device == "cpu"
    assert 0 < r.step_seconds < r.history[0].seconds


def test_train_command_takes_a_timm_model(capsys):
    assert main(["train", "--model", "timm:resnet18", "--epochs", "1", "--batch-size", "256", "--threads", "1",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] in ("complete", "stopped", "diverged") and out["device"] == "cpu" and out["step_seconds"] > 0


def test_study_with_a_regnety_reference_reports_activations_and_step_time(tmp_path):
    path = tmp_path / "refs.yaml"
    path.write_text("models: [vit_p_micro, regnety_micro]\ntrain: {epochs: 1, batch_size: 128, threads: 1}\n"
                    "space:\n  lr: {values: [0.0005, 0.002]}\ndesign: {kind: grid, seeds: 1}\n")
    spec, runs = load_spec(str(path)), tmp_path / "runs"
    assert run_study(spec, RunOptions(runs_dir=runs), progress=False).done == 4
    mm = model_metrics(load_results(spec.name, Results.of(runs))).set_index("model")
    assert mm.at["regnety_micro", "activations"] == 27_478 and mm.at["regnety_micro", "device"] == "cpu"
    assert (mm["step_seconds"] > 0).all()
    rows = {r[0]: r[1:] for r in metrics_table(mm.reset_index()).rows}
    assert rows["training step, median of warm steps (ms) · device"][1].endswith("ms · cpu")
    board = {r.model: r for r in study_rows(spec.name, Results.of(runs))}
    assert board["regnety_micro"].step_seconds > 0 and board["regnety_micro"].activations == 27_478
