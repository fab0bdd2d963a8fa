"""Headlines at a glance: every real outcome of a comparison (and of a claim) reads in at most 25 words, gives the
decision with its effect and interval in the unit that decided it, says what would decide an undecided one with the
command, and prints as lines of at most 100 characters (80 at 80 columns), wrapped at spaces."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from robustbench_vit.analysis import metrics as M
from robustbench_vit.analysis.claims import Claim, ClaimLook, Roles, ScoredClaim, claim_lines, score
from robustbench_vit.analysis.comparison import Interval, comparisons
from robustbench_vit.analysis.figure_data import claims_forest, forest_info
from robustbench_vit.analysis.summary import comparison_details_table, comparisons_table, rounded, terminal_lines
from robustbench_vit.analysis.summary import LINE
from robustbench_vit.analysis.verdict import HEADLINE_WORDS, Verdict, headline_lines, rerun, verdicts
from robustbench_vit.commands.common import Launch, ScorecardRequest, decide_command
from robustbench_vit.models.spec import ModelSpec
from tests.test_verdict import BASE_C, BASE_P, N, _model

RNG = np.random.default_rng(1)
NEAR_P = 8 + np.linspace(0, 12, N)[RNG.permutation(N)]  # both learn, a modest difference: undecided at 16
NEAR_C = 8 + np.linspace(0, 9, N)[RNG.permutation(N)]
CASES = {  # outcome → the models of a study that gives it (vit_c_x vs vit_p_x)
    "more robust": lambda: (_model("vit_p_x", BASE_P), _model("vit_c_x", BASE_C)),
    "less robust": lambda: (_model("vit_p_x", BASE_C), _model("vit_c_x", BASE_P)),
    "equivalent": lambda: (_model("vit_p_x", BASE_C), _model("vit_c_x", BASE_C)),
    "inconclusive": lambda: (_model("vit_p_x", NEAR_P), _model("vit_c_x", NEAR_C)),
    "confounded": lambda: (_model("vit_p_x", BASE_C), _model("vit_c_x", BASE_C + 7)),
    "did not train": lambda: (_model("vit_p_x", BASE_P), _model("vit_c_x", 100.0, status="diverged")),
    "all diverged": lambda: (_model("vit_p_x", 100.0, status="diverged"), _model("vit_c_x", 100.0,
                                                                                  status="diverged")),
    "all failed": lambda: (_model("vit_p_x", BASE_P), _model("vit_c_x", np.nan, status="failed")),
    "one trial": lambda: (_model("vit_p_x", BASE_P).iloc[:1], _model("vit_c_x", BASE_C).iloc[:1]),
    "adaptive": lambda: (_model("vit_p_x", BASE_P), _model("vit_c_x", BASE_C)),
}


def _frame(case: str) -> pd.DataFrame:
    """The trial table of a case."""
    df = pd.concat(CASES[case](), ignore_index=True)
    df.attrs["design"] = "tpe" if case == "adaptive" else None
    return df


def _verdict(case: str, command: str | None = "study run lr_sensitivity"):
    """The one verdict of a case's study (vit_c_x vs vit_p_x)."""
    df = _frame(case)
    (v,) = verdicts(M.model_metrics(df), comparisons(df), command=command)
    return v


@pytest.mark.parametrize("case", list(CASES))
def test_every_outcome_has_a_headline_of_at_most_25_words_and_100_characters_a_line(case):
    v = _verdict(case)
    assert v.summary and len(v.summary.split()) <= HEADLINE_WORDS, v.summary
    full = f"{v.title}: {v.summary}"
    assert len(v.line) <= LINE and (v.line == full or len(full) > LINE), (v.line, full)  # the headline where it fits
    for width in (80, 100, 200):
        lines = headline_lines([v], width)
        assert all(len(line) <= min(width, 100) for line in lines), lines
        head = [x for x in lines if not x.startswith(("next:", "    "))]
        assert len(head) == 1 and " ".join(x.strip() for x in lines).startswith(v.line)  # wrapped at spaces
    print(f"{case}: {len(v.summary.split())} words (the full sentence: {len(v.text.split())})")


def test_decided_headlines_give_the_effect_and_interval_in_the_unit_that_decided():
    v = _verdict("more robust")
    iv = v.effect
    assert v.outcome == "more robust" and v.summary.startswith("vit_c_x is more robust than vit_p_x: ")
    # a terminal prints the headline itself where it fits and names both models (the front door's, 2026-12-07)
    front = Verdict("vit_c_micro", "vit_p_micro", "more robust", "(the full sentence)", summary=(
        "vit_c_micro is more robust than vit_p_micro: Δ-EDF area +0.21 [+0.08, +0.38]."),
        effect=Interval(0.21, 0.08, 0.38), statistic="area")
    assert front.line == front.summary
    unit = "normalised robustness" if v.confounded else "Δ-EDF area"
    assert f"{unit} {rounded(iv.value, iv.low, iv.high)}" in v.summary
    rev = _verdict("less robust")
    assert rev.outcome == "less robust" and rev.summary.startswith("vit_p_x is more robust than vit_c_x: ")
    assert f"{unit} +" in rev.summary  # read from the model ahead: a positive effect
    eq = _verdict("equivalent")
    assert eq.outcome == "equivalent" and "equally robust" in eq.summary and "within ±0.05" in eq.summary
    conf = _verdict("confounded")
    assert conf.confounded and "normalised robustness" in conf.summary and "bests far apart" in conf.summary


def test_an_undecided_headline_says_how_many_settings_would_decide_and_the_command():
    v = _verdict("inconclusive")
    assert v.outcome == "inconclusive" and v.needed and v.summary.startswith("Inconclusive: Δ-EDF area ")
    assert f"about {v.needed} settings per model would decide: `study run lr_sensitivity --until-decided`." \
        in v.summary
    assert "re-run with `--until-decided`" in _verdict("inconclusive", command=None).summary
    assert rerun("lr_wd_stability-quick", "quick") == "study run lr_wd_stability --preset quick"
    assert rerun("lr_sensitivity", None) == "study run lr_sensitivity" and rerun("x-set-0badc0de", None) is None
    # nothing dropped: the power sentence and every number stay in the details
    assert any("Power to decide" in c for c in v.caveats) and "permutation test p" in v.headline


def test_a_terminal_line_per_comparison_keeps_the_decision_and_effect_and_moves_the_command_last():
    """compare's stems carry long names: each comparison still gets one line of at most 100 characters with its
    decision and effect [95%]; an undecided one's command follows once, after every line, with the most settings
    any comparison needs."""
    long = {"vit_p_x": "regnety_micro", "vit_c_x": "overlap_patch_stem_micro"}  # default_name of OverlapPatchStem
    vs = []
    for case in ("more robust", "inconclusive", "confounded", "equivalent"):
        df = _frame(case)
        df["model"] = df["model"].map(long)
        df.loc[df["model"] == "regnety_micro", "model"] = "vit_p_micro"  # a baseline's name, as compare gives
        (v,) = verdicts(M.model_metrics(df), comparisons(df), command="compare --stem stems.py:Overlapping --study "
                        "lr_wd_stability")
        vs.append(v)
    for v in vs:
        assert len(v.line) <= LINE and v.line.startswith(f"{v.title}: {v.outcome}"), v.line
        iv = v.effect
        assert rounded(iv.value, iv.low, iv.high) in v.line, v.line  # model − baseline, in the unit that decided
    undecided = [v for v in vs if v.needed]
    assert undecided, [v.outcome for v in vs]
    lines = headline_lines(vs, 80)
    assert all(len(x) <= 80 for x in lines), lines
    text = " ".join(x.strip() for x in lines)
    most = max(v.needed for v in undecided)
    assert text.endswith(f"next: compare --stem stems.py:Overlapping --study lr_wd_stability --until-decided "
                         f"(about {most} settings per model would decide it)"), text
    assert sum(x.startswith("next:") for x in lines) == 1
    assert [v.to_dict()["line"] for v in vs] == [v.line for v in vs]


def test_no_effect_headlines_say_why_plainly():
    assert _verdict("did not train").summary == ("vit_c_x did not learn (never beat chance): no robustness to "
                                                 "compare.")
    assert _verdict("all diverged").summary.startswith("Neither model learned")
    assert _verdict("all failed").summary.startswith("No comparison: vit_c_x has no results yet; `study run")
    assert "at least 2 results per model (have 1 and 1)" in _verdict("one trial").summary
    assert "no robustness verdict" in _verdict("adaptive").short


def test_rounding_follows_the_interval_and_json_keeps_the_numbers():
    assert rounded(0.3149, 0.146, 0.486) == "+0.31 [+0.15, +0.49]"
    assert rounded(0.25, -0.004, 0.43) == "+0.25 [\u22120.00, +0.43]"
    assert rounded(-1.234, -3.9, 1.5) == "\u22121.2 [\u22123.9, +1.5]"
    d = _verdict("more robust").to_dict()
    assert d["comparison"] == "vit_c_x vs vit_p_x" and d["low"] <= d["effect"] <= d["high"] and d["p"] < 0.05
    lines = terminal_lines(["word " * 30, "x"], 80)
    assert [len(x) for x in lines] == [79, 4 + 5 * 14 - 1, 1]  # the second wraps under a 4-space indent
    assert lines[1].startswith("    word") and lines[2] == "x"


def test_the_comparisons_table_fits_in_seven_columns_and_the_rest_moves_to_details():
    df = _frame("more robust")
    cmp = comparisons(df)
    table, details = comparisons_table(cmp), comparison_details_table(cmp)
    assert table.headers == ["model vs baseline", "n", "decision", "effect [95%]", "p", "best error diff. [95%]",
                             "did not train, diff. [95%]"]
    assert {"power to decide", "n to decide", "KS D · p", "sign-test p", "area difference [95%]"} <= set(
        details.headers)
    assert table.rows[0][0] == details.rows[0][0] == "vit_c_x vs vit_p_x"


def test_the_forest_has_one_row_per_comparison_with_its_margin_and_noise_floor():
    df = pd.concat([_model("vit_p_x", BASE_P), _model("vit_c_x", BASE_C), _model("regnety_x", NEAR_C)],
                   ignore_index=True)
    cmp = comparisons(df)
    info = forest_info(cmp)
    assert [r.label for r in info.rows] == [f"{c.model} vs {c.baseline}" for c in cmp]
    for r, c in zip(info.rows, cmp):
        assert (r.value, r.low, r.high) == (c.decision.difference.value, c.decision.difference.low,
                                            c.decision.difference.high)
        assert r.margin == c.decision.margin
        assert r.floor is None if c.confounded else r.floor > 0  # the permutation null's floor, in area units
    assert forest_info([]) is None


def test_claim_headlines_give_status_effect_interval_and_next_step():
    claim = Claim(id="robust", statement="ViT_C is more robust.", where="Fig. 4", paper="EDF above.", study="x",
                  test="robustness")
    best = Claim(id="peak", statement="ViT_C is better.", where="Table 2", paper="24.7 vs 27.7.", study="x",
                 test="best")
    rows = []
    for case in ("more robust", "inconclusive"):
        df = _frame(case)
        for c in (claim, best):
            scored = score(c, df, Roles("x", "vit_c_x", "vit_p_x"), power=False)
            rows.append(ScoredClaim(scored, "x", "../x/report.html"))
    for row in rows:
        s = row.score
        assert row.headline.startswith(f"{s.claim.id} (x): {s.status}, {s.unit} ")
        assert rounded(s.effect, *s.interval) in row.headline
        assert ("`reproduce --until-decided`" in row.headline) == (s.status == "inconclusive")
        assert all(len(line) <= 80 for line in terminal_lines([row.headline], 80))
    assert rows[0].score.status == "reproduced" and rows[0].score.unit in ("Δ-EDF area", "normalised robustness")
    # a long id: the line keeps status and effect [95%] in ≤ 100 characters, the command comes once, last
    undecided = next(r for r in rows if r.score.status == "inconclusive")
    renamed = claim.model_copy(update={"id": "conv_stem_at_least_as_robust_as_cnn"})
    long = ScoredClaim(replace(undecided.score, claim=renamed, needed=37), "tiny", "../x/report.html")
    assert len(long.headline) > LINE and len(long.line) <= LINE, long.line
    assert long.line.startswith("conv_stem_at_least_as_robust_as_cnn (tiny): inconclusive, ") and "37" in long.line
    lines = claim_lines([*rows, long], 80)
    assert all(len(x) <= 80 for x in lines) and sum(x.startswith("next:") for x in lines) == 1
    most = max(r.score.needed or 0 for r in [*rows, long] if r.score.status == "inconclusive")
    assert " ".join(x.strip() for x in lines).endswith(f"next: reproduce --until-decided (about {most} settings "
                                                       "per model would decide every claim)"), lines
    assert rows[1].score.unit == "error points"
    info = claims_forest(rows)
    assert [r.label for r in info.rows] == ["robust (x)", "peak (x)"] * 2 and info.sense.endswith("claims)")


def test_an_undecided_claim_names_the_command_of_its_own_run_and_a_budget_past_the_one_spent():
    """The next step repeats the run's claims, preset, stem (name, size, options) and --set; after a look run spent its budget it
    asks for a larger --budget (trials: the settings per model the claims need × the study's models, at least twice
    the settings spent); the `next:` line does not promise to decide a claim that needs more than any size tried."""
    claim = Claim(id="robust", statement="ViT_C is more robust.", where="Fig. 4", paper="EDF above.", study="x",
                  test="robustness")
    undecided = score(claim, _frame("inconclusive"), Roles("x", "vit_c_x", "vit_p_x"), power=False)
    assert undecided.status == "inconclusive"
    fixed = replace(undecided, needed=34, power=0.28)
    spent = replace(undecided, needed=None, power=0.05, look=ClaimLook(1, 8, 16, 0.05, False))
    assert decide_command(ScorecardRequest(), [(fixed, 3)]) == "reproduce --until-decided"
    fashion = ScorecardRequest(preset="fashion", launch=Launch(overrides={"train.epochs": 3, "design.seed": "a b"}))
    command = decide_command(fashion, [(fixed, 3), (spent, 2)])
    assert command == "reproduce --preset fashion --set train.epochs=3 --set 'design.seed=a b' --until-decided " \
                      "--budget 32"  # max(0, 2 × 8) settings × 2 models: 34 × 3 is asked of a claim with no look
    stem = ModelSpec(name="vit_mine_micro", size="micro", stem="/abs/my_stem.py:Mine", stem_options={"k": 5})
    assert decide_command(ScorecardRequest(stem=stem, claims="robust"), [(replace(spent, needed=40), 3)]) == \
        "compare --stem /abs/my_stem.py:Mine --name vit_mine_micro --size micro --claims robust --options " \
        "'{\"k\": 5}' --until-decided --budget 120"
    assert decide_command(ScorecardRequest(claims="a,b"), []) == "reproduce --claims a,b --until-decided"
    rows = [ScoredClaim(s, "micro", "../x/report.html", command) for s in (fixed, spent)]
    assert f"about 34 settings per model would decide: `{command}`" in rows[0].headline
    lines = " ".join(x.strip() for x in claim_lines(rows, 80))
    assert lines.endswith(f"next: {command} (about 34 settings per model would decide the others; 1 would need "
                          "more than 512)"), lines


def test_an_interval_reads_as_before_in_the_details():
    assert Interval(0.315, 0.146, 0.486).text("+.3f") == "+0.315 [+0.146, +0.486]"
