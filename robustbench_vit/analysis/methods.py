"""How every number in a report is made: one text, rendered by both the HTML and the PDF report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from robustbench_vit.analysis.frame import CHANCE_MARGIN, ERROR_CAP
from robustbench_vit.analysis.importance import DEPTH, MIN_TRIALS, SEED, TREES
from robustbench_vit.analysis.importance import NOTE as IMPORTANCE_NOTE
from robustbench_vit.analysis.inference import (BOOTSTRAP, EXACT_MAX, MAX_N, PERMUTATIONS, POWER_PERMUTATIONS,
                                                POWER_SIMS, POWER_TARGET, SEARCH_PERMUTATIONS, SEARCH_SIMS)
from robustbench_vit.analysis.comparison import MARGINS
from robustbench_vit.analysis.metrics import CROSSING, DELTA_WINDOW, PEAK_POINTS, PEAK_SHARE
from robustbench_vit.analysis.sequential import ALPHA, RHO, Look

@dataclass(frozen=True)
class Term:
    """A word a headline uses: its anchor in Methods, a plain-words gloss for its first use, its definition."""

    anchor: str
    term: str  # as headlines word it (matched case-sensitively)
    gloss: str
    definition: str


GLOSSARY = (
    Term("def-delta-edf-area", "Δ-EDF area", "share of settings near the model's best; higher = more robust",
         f"Δ-EDF area: the average share of a model's trials within Δ points of its own best error, for Δ from 0 "
         f"to {DELTA_WINDOW:g} points (1: every trial at its best; 0: none within {DELTA_WINDOW:g} points). A "
         "model whose error stays near its best over more of the settings has the larger area: it is more robust "
         "to its hyperparameters. Headlines give the difference model − baseline with its 95% interval."),
    Term("def-normalised-robustness", "normalised robustness",
         "share of the possible gain over chance a trial keeps; higher = more robust",
         "Normalised robustness: the average over a model's trials of (chance − error) / (chance − best), clipped "
         "to 0–1: the share of the improvement over chance that the model can reach which a trial keeps. Used "
         "instead of the Δ-EDF area where two models' best errors are far apart, as Δ from a far worse best is "
         "small for a model that is bad everywhere."),
    Term("def-equivalent", "equally robust", "the difference's 95% interval lies within the margin ±δ",
         f"Equally robust (equivalent within ±δ): the 95% interval of the difference lies wholly inside ±δ (δ = "
         f"{MARGINS['area']:g} by default), so any difference there may be is too small to matter. More / less "
         "robust: the test is significant and the interval lies wholly beyond ±δ. Anything else is inconclusive: "
         "the study is too small to tell, and the headline says how many settings per model would decide."),
    Term("def-noise-floor", "noise floor", "how far two copies of one model differ",
         "Noise floor: how far apart two copies of the same model (each trained from its own random start on the "
         "same settings) come out; measured by `robustbench-vit calibrate`, else the value expected by chance "
         "(the permutation null). A difference inside the floor is not told apart from noise."),
)

# python benchmarks/calibration.py --sims 200 (200 simulated null studies per cell, paired)
CALIBRATION = ("false-positive rate at α = 5% between {lo:.1%} and {hi:.1%} for 9, 32 and 64 settings per model with "
               "0, 20, 40 and 60% of the trials capped, and at 128 and 512 settings with 0 and 40% capped (200 "
               "simulated studies per cell, Monte Carlo standard error 1.5%); the same when one model is worse by a "
               "constant 7 points; scipy's ks_2samp on Δerror, used before, rejected 78% at 32 settings with 40% "
               "capped")
CALIBRATION_RANGE = (0.015, 0.080)  # measured 2026-12-03: lowest, highest false-positive rate over the 16 cells

# fANOVA spread: measured 2026-12-03, 10 redraws of a known lr×wd surface per size
IMPORTANCE = ("Hyperparameter importances (random and quasirandom designs): Optuna's fANOVA (Hutter et al. "
              f"2014; {TREES} trees of depth ≤ {DEPTH}, seed {SEED}) per model and stratum, on the error with trials "
              "that did not train at the cap and failed ones left out; log ranges on a log10 scale, integrated over "
              "the searched range. Each value is the fraction of the forest's error variance explained by that "
              f"hyperparameter's main effect; interactions are the rest. From {MIN_TRIALS} trials on: on a known "
              "surface lr's share varied by sd 0.19 over redraws at 8 trials, 0.15 at 16, 0.06 at 32. Not for grid "
              "or TPE designs, a model that did not learn, constant errors, or one varying hyperparameter "
              "(trivially 100%). " + IMPORTANCE_NOTE)


ROBUSTNESS_TEST = (
    "Robustness test: a permutation test of two statistics together, the Δ-EDF area difference and the "
    f"largest vertical gap between the Δ-EDFs within the 0–{DELTA_WINDOW:g} point window (KS D; Δ beyond the "
    "window are alike, so where capped trials sit does not matter), combined by their smallest permutation p "
    "(min-p; Westfall & Young 1993), so that the combination stays exact. Where the design pairs settings (the "
    "same hyperparameters and replicate for both models), the paired version swaps the two models' results "
    "within each setting, after moving the baseline by the median paired difference over the settings where "
    "neither is capped (both statistics are shift-invariant, so only the null changes: a model worse by a "
    "constant is not exchangeable with the other, and without the alignment a shift of 7 points was flagged "
    "in 11.5% of simulated studies at 128 settings and ~20% at 512); otherwise the two-sample version "
    "re-deals the pooled results. Each model's best is re-taken in every permutation. Exact enumeration up to "
    f"{EXACT_MAX} settings (2^n swaps), else {PERMUTATIONS:,} seeded Monte Carlo permutations with the +1 "
    "correction; two-sided; ties with the observed statistic are broken at random (seeded), as the area is "
    "flat for trials beyond the window — counting ties whole holds the size far below 5% in small studies "
    "(the conservative p is kept too); two identical samples get p = 1. Calibration: " + CALIBRATION.format(
        lo=CALIBRATION_RANGE[0], hi=CALIBRATION_RANGE[1]) + ". scipy's KS test is not used, as its p assumes no "
    "ties and capped trials all tie.")

DECISION = (
    f"Decision (three-way, DESIGN.md §1.2): 'more robust' / 'less robust' when the test gives p < 5% and the "
    f"95% bootstrap interval of the Δ-EDF area difference lies beyond ±δ (δ = {MARGINS['area']:g} by default; "
    "a study's `margins: {area: …}` sets it); 'equivalent within ±δ' when the interval lies inside ±δ; "
    "otherwise inconclusive, with the power to decide and the settings per model that would (normal "
    "approximation of the difference's bootstrap spread, scaled by √n; it takes the observed difference as "
    "the true one). A direction whose Δ-EDFs cross (the lead's lies below the other's by more than "
    f"{CROSSING:.0%} of the trials, or one trial) reads 'differ, but the Δ-EDFs cross'. Every verdict also "
    "states the absolute-error side. In simulation (benchmarks/calibration.py, 200 studies per cell), copies of "
    "one model were called more or less robust in 0% of studies at 32, 64, 128 and 512 settings with 0 and 40% "
    "capped; a true difference of 2δ was decided at least as often as the power the studies stated (16 vs 14% "
    "at 32 settings, 56 vs 45% at 512): the stated power is conservative.")

PEAK_GUARD = (
    f"Peak-error guard: Δ is measured from each model's own best, so a model that is bad everywhere looks "
    f"robust. Where the two bests are more than {PEAK_POINTS:g} points apart, or the worse is more than "
    f"{PEAK_SHARE:.0%} of the way from the better to chance, the verdict says that Δ-robustness is confounded "
    "by peak error and decides on the normalised robustness instead: the mean share of the attainable "
    "improvement a trial keeps, mean(clip((chance − error) / (chance − best), 0, 1)), with its own margin "
    f"(δ = {MARGINS['retained']:g}), tested the same way after rescaling the baseline towards chance by the "
    "median paired improvement ratio (the statistic is invariant to such a scale change). Such a model's "
    "Δ-based cells are marked † and it gets no rank. Normalised LR sensitivity = Wortsman's value divided by "
    "the attainable improvement (chance − best of the sweep): the share of it lost across the lr range.")


# python benchmarks/calibration.py --sequential --sims 200 (measured 2026-12-04; 200 simulated studies per cell)
SEQUENTIAL_CALIBRATION = (
    "with looks every 4, 8 or 16 settings per model up to budgets of 32, 64 and 128 (8 schedules), copies of one "
    "model with 0, 30 and 60% of the trials capped were called more or less robust in none of 200 simulated "
    "studies per cell (24 cells; 999 permutations per look; Wilson 95% upper bound 1.9%), and a true difference of "
    "+δ was called equivalent in none (the bound: 2.5%); looks before the budget at fewer than 8 settings per "
    "model spend nothing (at 4 settings the bootstrap interval called copies equivalent in up to 6% of studies). With a look every 8 settings, Δ-area differences of +0.2 and +0.3 were decided after "
    "43 and 32 settings per model on average with a budget of 64 (74 and 94% of studies; the fixed design of 64 "
    "settings: 72 and 96%), 32–50% fewer, and after 67 and 41 with a budget of 128 (48–68% fewer); a difference of "
    "+0.1 was rarely decided by either (17% of studies by the sequential design at 64, 26% by the fixed one)")

SEQUENTIAL = (
    "Sequential decisions (--until-decided): the study is analysed at looks of n₁ < n₂ < … settings per model up "
    "to a budget of N, and each decision stops at the first look that takes it. Look k decides as above, but at "
    "its own level α_k: the permutation test significant at p < α_k and the (1 − α_k) bootstrap interval beyond "
    "±δ, or that interval inside ±δ for equivalence (repeated confidence intervals; Jennison & Turnbull 1989, "
    "2000). The levels are spent from α = {alpha:g} by an alpha-spending function (Lan & DeMets 1983) of the "
    "Kim & DeMets (1987) power family f(t) = min(t, 1)^ρ, ρ = {rho:g}, t = n / N: α_k = (α − S)·(f(n_k/N) − "
    "f(n_{{k−1}}/N)) / (1 − f(n_{{k−1}}/N)), S the α spent by the earlier looks (under whatever budget they had); a "
    "look at the budget spends all that is left, so Σ α_k ≤ α even when a later run raises the budget. By the "
    "union (Bonferroni) bound, valid whatever the dependence between looks, a false 'more / less robust' has "
    "probability ≤ Σ α_k ≤ α and a false 'equivalent' (a true difference of ±δ) ≤ α/2; the bound is conservative, "
    "as the looks share their settings. Repeating fixed 5% tests at every look would not control the error. "
    "Calibration: {calibration}.")


RANGES = (
    "Each model's own range (a study's `scale:`): the paper searches every model around its own good values "
    "(Table 4: RegNetY's AdamW lr range is the ViTs' times 5 and its weight decay times 0.3; under SGD 2.5 and "
    "0.7). Here one unit design is drawn and each point is mapped into each model's range by those factors, "
    "so the settings stay paired (one point, one setting seed for every model). Tables and figures show the "
    "design's value; `export` also has lr_trained and weight_decay_trained. A/A copies share their model's "
    "range.")

COST = (
    "Cost: activations are counted (the output elements of every conv and matmul for one image, on the meta "
    "device); step time is each trial's median warm training step at the study's batch size, on the device "
    "it ran on. The cost claim compares the two models' medians over trials, with a 95% bootstrap interval of "
    "their ratio; trials that share a CPU share its load, so only ratios measured in one run are compared.")


def sequential_paragraph(looks: Sequence[Look]) -> str:
    """The Methods paragraph on sequential decisions, with the looks a decision of this study took (oldest first;
    empty: the procedure only). Pure: the report adds it where the study was run with --until-decided."""
    text = SEQUENTIAL.format(alpha=ALPHA, rho=RHO, calibration=SEQUENTIAL_CALIBRATION)
    if not looks:
        return text
    budgets = sorted({lk.budget for lk in looks if lk.budget})
    at = ", ".join(f"{lk.n} (α_k = {lk.level:.2g})" for lk in looks)
    under = f" under a budget of {' then '.join(map(str, budgets))} settings per model" if budgets else ""
    return (f"{text} This study looked at {at} settings per model{under}; α spent: {looks[-1].spent:.3g} of "
            f"{ALPHA:g}.")


def methods(looks: Sequence[Look] | None = None) -> list[str]:
    """The Methods section, one paragraph per item; `looks` (a study run with --until-decided: the looks its
    decisions took) adds the paragraph on sequential decisions after the decision's."""
    return [
        "Outcomes: every trial is complete, at chance (finished with an error within "
        f"{CHANCE_MARGIN:g} points of chance, 100·(1 − 1/classes), with the class count stored with the trial), "
        "diverged (non-finite loss, or a loss far above its start), or failed (no result: an exception, a kill, "
        f"running out of memory). Did not train = at chance + diverged: those count at {ERROR_CAP:g}% error in "
        "every metric, figure and test. Failed trials are no result: left out of everything and listed. In Optuna "
        "storage, diverged trials are COMPLETE with value 100 (optuna-dashboard plots them) and failed ones FAIL; "
        "'at chance' is decided when reading, from the stored error and class count.",
        "Seeds (DESIGN.md §1.2): every setting of a design (a point × a replicate) gets its own seed, hashed from "
        "the design seed, the point and the replicate; it sets the data order, augmentation and mixup, shared by "
        "the models of that setting (common random numbers). Each model's initial weights come from its own init "
        "seed, hashed from (setting seed, model name), so every trial of a model starts from an independent draw "
        "and no two models share an init stream. A design's 'seeds' are replicates: extra independent draws at "
        "one point. `export` shows setting_seed and init_seed with each trial.",
        "A model learned when at least one of its trials is complete. One that did not (all diverged or at "
        "chance) has every Δerror ≈ 0 and would look perfectly robust: it is named as not having learned, gets "
        "no robustness metrics or rank, and no comparison calls it or its opponent more robust.",
        "EDF F(e) = (1/n)·Σ 1[eᵢ < e] over a model's results (Radosavovic et al. 2019); Δerror = error − the "
        "model's best. Bands: 95% pointwise bootstrap (1,000 resamples, the best re-taken in each).",
        f"Δ-EDF area = (1/D)·∫₀ᴰ F(Δ) dΔ = mean(max(0, 1 − Δᵢ/D)) with D = {DELTA_WINDOW:g} points: 1 when every "
        "trial reaches its model's best, 0 when none is within D points.",
        ROBUSTNESS_TEST,
        DECISION,
        *([sequential_paragraph(looks)] if looks is not None else []),
        PEAK_GUARD,
        f"Intervals: 95% percentile bootstrap ({BOOTSTRAP:,} resamples) over the paired settings (or within each "
        "sample where unpaired) of the differences model − baseline: Δ-EDF area, share within 1/2/5 points of the "
        "best, did-not-train rate and best error. Per-model did-not-train rates carry a Wilson 95% interval.",
        f"Power of the scorecard's best-error and gap claims: {POWER_SIMS} simulated studies of n settings each, resampled from the observed ones, each tested "
        f"as above ({POWER_PERMUTATIONS} Monte Carlo permutations); the share rejecting at 5% estimates the power "
        f"at n. The settings per model for {POWER_TARGET:.0%} are the smallest on a 2–3–4–6–8–12–… ladder up to "
        f"{MAX_N} ({SEARCH_SIMS} studies of {SEARCH_PERMUTATIONS} permutations each). It takes the observed "
        "difference as the true one, so it is optimistic for small studies.",
        "Absolute error: the paired sign test over identical settings (seed and every hyperparameter), never by "
        "design-point index alone (TPE samples each model's points separately); ties are left out.",
        "Comparisons: only models of one size: vit_c vs vit_p; each ViT vs the size's CNN reference (RegNetY, or a "
        "timm model) where the study runs one; each other stem vs all of them.",
        RANGES,
        COST,
        "Expected best error after n trials: E[min of n draws with replacement] from the sorted sample (Dodge et "
        "al. 2019), ± its standard deviation. Not shown for adaptive (TPE) designs.",
        "LR sensitivity (Wortsman et al. 2023), on 1-D lr sweeps: mean over the lr values of min(error, error at "
        "initialisation) − the best of those, where error at initialisation is chance; trials sharing an lr are "
        "averaged over seeds first. Where other hyperparameters vary in a grid, each fixed setting of them is a "
        "1-D slice and the slices with ≥ 3 lr values are averaged; per optimizer where several ran. Random designs "
        "draw every lr once and have no such sweep: n/a. Not computed for a model that did not learn.",
        "Where the best lr / wd lies (pycls): 2,500 subsamples of 25% of the trials with replacement, each keeping "
        "its best trial; the 2.5–97.5% percentile range of the kept values (from 16 trials on). It locates the "
        "optimum; it is not a robustness score.",
        IMPORTANCE,
        "Adaptive (TPE) designs: no EDF, robustness test or random-budget curve; best error per model and the "
        "number of trials each search needed to come within 1 point of its best.",
    ]
