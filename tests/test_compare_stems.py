"""Several stems in one compare: repeated --stem, or a study YAML's `stems:`, run on the baselines' points in one
launch, with one report and a verdict per stem."""

import pytest
import yaml

from robustbench_vit.analysis.frame import load_results
from robustbench_vit.cli import main
from robustbench_vit.store import Results
from tests.test_timm_stems import STUDY, emb  # noqa: F401  (emb: the fixture writing the timm-style stems)


def test_several_stem_mistakes_are_one_line_and_nothing_is_written(emb, tmp_path, capsys):  # noqa: F811
    study = tmp_path / "s.yaml"
    study.write_text(STUDY)
    runs = tmp_path / "runs"
    for argv, msg in [(["--stem", "hmlp", "--stem", "levit", "--name", "x"], "--name and --options apply to one"),
                      (["--stem", "hmlp", "--stem", "hmlp"], "two stems get the same model name"),
                      (["--stem", "hmlp", "--stem", "levit", "--claims"], "--claims scores one stem")]:
        assert main(["compare", *argv, "--study", str(study), "--runs-dir", str(runs)]) == 2
        assert msg in capsys.readouterr().err
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({k: v for k, v in yaml.safe_load(STUDY).items() if k != "stems"}))
    assert main(["compare", "--study", str(bare), "--runs-dir", str(runs)]) == 2
    assert "lists no stems besides the baselines; give --stem" in capsys.readouterr().err
    assert not runs.exists()


@pytest.mark.slow
def test_several_stems_run_in_one_launch_on_the_baselines_points_with_one_report(emb, tmp_path, capsys):  # noqa: F811
    study = tmp_path / "s.yaml"
    study.write_text(STUDY)
    runs, out = tmp_path / "runs", tmp_path / "report"
    # The study's own stems (its YAML `stems:`), no --stem: baselines and both stems in one launch.
    assert main(["compare", "--study", str(study), "--runs-dir", str(runs), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "8 trials ran now" in printed.err and "2 stems: FLOP-matched" in printed.err
    # Two more with repeated --stem: a timm embed layer unchanged and a zoo stem; the baselines' trials are reused.
    assert main(["compare", "--stem", "timm.layers:PatchEmbed", "--stem", "hmlp", "--study", str(study),
                 "--runs-dir", str(runs), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "4 trials ran now" in printed.err
    new = ["tok_micro", "lev_micro", "patch_embed_micro", "vit_hmlp_micro"]
    for model in new[2:]:
        for base in ("vit_p_micro", "vit_c_micro"):
            assert f"{model} vs {base}: " in printed.out
    df = load_results("s", Results.of(runs))
    points = {m: sorted(zip(g["point"], g["lr"])) for m, g in df.groupby("model")}
    assert set(points) == {"vit_p_micro", "vit_c_micro", *new}
    assert all(p == points["vit_p_micro"] for p in points.values())  # every stem on the baselines' points
    html = (out / "report.html").read_text()
    assert all(m in html for m in new)
    board = (out / "leaderboard" / "index.html").read_text()  # and the leaderboard of the study, beside it
    assert all(m in board for m in new) and 'href="../report.html"' in board
    assert "leaderboard html: " in printed.out
