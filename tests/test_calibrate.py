"""The A/A check for real: copies of the conv-stem model trained on a tiny study's settings, each trial from its own
init seed; the noise floor they measure is stored with the study and quoted by its report."""

import json
import textwrap

import pytest

from robustbench_vit.analysis.frame import load_results
from robustbench_vit.cli import main
from robustbench_vit.store import Results


@pytest.mark.slow
def test_calibrate_trains_copies_and_the_report_quotes_their_noise_floor(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(textwrap.dedent("""
        name: tiny_aa
        description: a real 2-epoch lr sweep, 4 settings
        models: [vit_p_micro, vit_c_micro]
        dataset: digits
        train: {optimizer: adamw, weight_decay: 0.05, epochs: 2, batch_size: 64, warmup_epochs: 0, threads: 1}
        space:
          lr: {values: [0.001, 0.003, 0.01, 0.03]}
        design: {kind: grid, seeds: 1}
    """))
    assert main(["calibrate", "tiny.yaml", "--replicas", "2", "--runs-dir", "runs", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the original and 2 copies: 3 pairs, each on the 4 settings; the verdict never separates copies here
    assert (out["model"], out["copies"], out["pairs"], out["settings"]) == ("vit_c_micro", 3, 3, 4)
    assert out["separated"] == 0 and set(out["outcomes"].values()) <= {"inconclusive", "equivalent"}
    assert 0 <= out["noise_floor"]["area"] <= 1 and out["noise_floor"]["best"] >= 0
    assert json.loads((tmp_path / "reports" / "tiny_aa" / "calibration.json").read_text()) == out
    # every copy's trials started from their own weights (init seed) on the same data order (setting seed)
    df = load_results("tiny_aa", Results.of("runs"))
    assert set(df["model"]) == {"vit_c_micro", "vit_c_micro_aa1", "vit_c_micro_aa2"}
    per_setting = df.groupby("point")
    assert (per_setting["setting_seed"].nunique() == 1).all() and (per_setting["init_seed"].nunique() == 3).all()
    # running it again trains nothing; the study's own report compares only the study's models and quotes the floor
    assert len(out["headlines"]) == 3 and all(len(h["headline"].split()) <= 25 for h in out["headlines"])
    assert main(["calibrate", "tiny.yaml", "--replicas", "2", "--runs-dir", "runs"]) == 0
    printed = capsys.readouterr().out
    assert "separated by the verdict" in printed
    tail = printed[printed.index("written: "):].splitlines()[1:]  # it ends with one headline per pair of copies
    assert sum(not ln.startswith(" ") for ln in tail) == 3 and all(len(ln) <= 80 for ln in tail)
    assert tail[0].startswith("vit_c_micro vs vit_c_micro_aa1: ")
    assert main(["study", "run", "tiny.yaml", "--runs-dir", "runs"]) == 0
    assert main(["report", "tiny.yaml", "--runs-dir", "runs"]) == 0
    html = (tmp_path / "reports" / "tiny_aa" / "report.html").read_text()
    assert "<strong>vit_c_micro vs vit_p_micro</strong>: " in html and "vit_c_micro_aa1 vs" not in html
    assert "Noise floor: copies of vit_c_micro differ by up to" in html and "3 independent copies, 3 pairs" in html
    # a bad model name: one line, exit 2
    assert main(["calibrate", "tiny.yaml", "--model", "nope", "--runs-dir", "runs"]) == 2
    assert "--model 'nope': not a model of study 'tiny_aa'" in capsys.readouterr().err
