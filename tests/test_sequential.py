"""Sequential decisions (analysis.sequential): the α spent over looks never exceeds α, however the looks fall and
however the budget changes between runs; looks survive storage; a simulated null keeps its error rate; a strong
effect stops early; degenerate data decide nothing and do not crash."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robustbench_vit.analysis import inference as I
from robustbench_vit.analysis.sequential import (ALPHA, Evidence, Look, decide_at, expected_settings, first_decision,
                                                 looks_at, next_look, run_sequential, schedule, spend)


def _null(n: int, q: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Both models from one distribution (benchmarks/calibration.py's null): s ~ U(5, 40) + N(0, 2), capped w.p. q."""
    s = rng.uniform(5.0, 40.0, n)
    e = np.clip(s + rng.normal(0.0, 2.0, (2, n)), 0.0, 100.0)
    return tuple(np.where(rng.random((2, n)) < q, 100.0, e))


def test_spending_follows_the_power_family_and_sums_to_alpha_at_the_budget():
    assert spend(0.0) == 0.0 and spend(0.5) == pytest.approx(ALPHA / 4) and spend(1.0) == spend(3.0) == ALPHA
    looks = schedule([8, 16, 24, 32], 32)
    assert [lk.level for lk in looks] == pytest.approx([ALPHA * (k * k - (k - 1) ** 2) / 16 for k in (1, 2, 3, 4)])
    assert looks[-1].spent == pytest.approx(ALPHA) and all(lk.budget == 32 for lk in looks)
    levels = [lk.level for lk in schedule(looks_at(4, 128), 128)]
    assert all(x < y for x, y in zip(levels, levels[1:]))  # ρ = 2 is convex: equal steps spend more later
    assert schedule([32], 32)[0].level == pytest.approx(ALPHA)  # one look at the budget: the fixed design


def test_looks_below_the_minimum_spend_nothing_and_the_next_one_spends_from_zero():
    small = schedule([4, 8, 12], 32)
    assert small[0].level == 0.0 and small[1].level == pytest.approx(spend(8 / 32))
    assert small[2].level == pytest.approx(spend(12 / 32) - spend(8 / 32))
    assert schedule([4, 6], 6)[1].level == pytest.approx(ALPHA)  # a budget below the minimum: decided at the budget
    assert schedule([4], 4)[0].level == pytest.approx(ALPHA)


def test_spent_never_exceeds_alpha_over_any_schedule_and_changed_budgets():
    rng = np.random.default_rng(0)
    for _ in range(300):
        history: list[Look] = []
        n = 0
        for _run in range(rng.integers(1, 4)):  # up to three runs, each with its own budget
            budget = int(rng.integers(4, 200))
            for _look in range(rng.integers(1, 8)):
                n += int(rng.integers(0, 40))  # repeated sizes, jumps past the budget: all allowed
                history.append(next_look(history, n, budget))
        spent = [lk.spent for lk in history]
        assert all(lk.level >= 0 for lk in history) and all(x <= y + 1e-15 for x, y in zip(spent, spent[1:]))
        assert sum(lk.level for lk in history) <= ALPHA + 1e-12 and spent[-1] <= ALPHA + 1e-12
        assert spent[-1] == pytest.approx(sum(lk.level for lk in history))


def test_a_continued_run_spends_only_what_is_left():
    first = schedule([8, 16], 32)  # stopped early (killed), then continued with twice the budget
    more = schedule([24, 32, 64], 64, history=first)
    assert more[0].level == pytest.approx((ALPHA - first[-1].spent) * ((24 / 64) ** 2 - (16 / 64) ** 2)
                                          / (1 - (16 / 64) ** 2))
    assert more[-1].spent == pytest.approx(ALPHA) and more[-1].level > 0
    spent = schedule([32], 32, history=first)  # the first run went to its budget: nothing is left
    assert spent[0].spent == pytest.approx(ALPHA)
    assert next_look(first + spent, 48, 64).level == 0.0
    assert next_look(first, 16, 32).level == 0.0 and next_look(first, 12, 32).level == 0.0  # no new settings
    assert next_look(first, 8, 8).level == pytest.approx(ALPHA - first[-1].spent)  # budget cut below: spend the rest


def test_looks_round_trip_through_json_as_stored_in_user_attrs():
    looks = schedule([8, 16, 24], 48)
    assert [Look.from_dict(json.loads(json.dumps(lk.to_dict()))) for lk in looks] == looks
    assert Look.from_dict({"n": 3, "level": 0.01, "spent": 0.01}) == Look(3, 0.01, 0.01, 0)  # no budget recorded


def test_a_look_decides_as_comparison_decide_at_its_level(monkeypatch):
    monkeypatch.setattr(I, "ADAPTIVE", False)  # decide's staged test would otherwise stop at another count
    rng = np.random.default_rng(3)
    s = rng.uniform(5, 40, 48)
    a, b = 5 + 0.2 * (s - 5) + rng.normal(0, 2, 48), s + rng.normal(0, 2, 48)
    ev = {}
    for n in (16, 32, 48):
        ev[n] = Evidence.of(a[:n], b[:n], seed=5, permutations=199)
        for look in (Look(n, 0.004, 0.01), Look(n, 0.05, 0.05)):
            assert ev[n].outcome(look.level, 0.05) == decide_at(a[:n], b[:n], "area", look, seed=5,
                                                                permutations=199).outcome
    look, d = run_sequential(a, b, every=16, budget=48, seed=5, permutations=199)
    assert first_decision(ev.__getitem__, schedule([16, 32, 48], 48), 0.05) == (look, d.outcome)
    assert d.outcome == "more robust" and look.n < 48 and d.alpha == look.level  # decided before the budget


def test_simulated_null_keeps_the_false_decision_rate_below_alpha():
    rng, sims, wrong = np.random.default_rng(11), 200, 0
    for k in range(sims):
        a, b = _null(24, 0.3 if k % 2 else 0.0, rng)
        ev: dict[int, Evidence] = {}

        def evidence(n: int, a=a, b=b, k=k, ev=ev) -> Evidence:
            ev.setdefault(n, Evidence.of(a[:n], b[:n], seed=k, permutations=199))
            return ev[n]
        wrong += first_decision(evidence, schedule([8, 16, 24], 24), 0.05)[1] in ("more robust", "less robust")
    assert wrong / sims <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / sims)  # union bound: ≤ 5% (+ MC error)


def test_degenerate_looks_read_inconclusive_without_crashing():
    look = Look(8, 0.01, 0.01, 32)
    capped = np.full(8, 100.0)
    assert decide_at(capped, capped, "area", look).outcome == "inconclusive"  # no model learned
    assert decide_at(capped, np.linspace(10, 20, 8), "area", look).outcome == "inconclusive"
    one = decide_at([10.0], [30.0], "area", Look(1, 0.01, 0.01, 32))
    assert one.outcome == "inconclusive" and not one.decided
    same = np.linspace(10, 30, 8)
    d = decide_at(same, same, "area", look)
    assert d.p == 1.0 and d.outcome not in ("more robust", "less robust")  # no evidence of a difference
    assert decide_at(same, same + 5, "area", Look(8, 0.0, 0.05, 32)).outcome == "inconclusive"  # nothing left
    assert Evidence.of(capped, capped, permutations=99).outcome(0.05, 0.05) == "inconclusive"
    with pytest.raises(ValueError, match="fewer than the budget"):
        run_sequential(same, same, every=4, budget=16)


def test_expected_settings_shrink_with_the_effect_and_stay_within_the_budget():
    looks = looks_at(8, 64)
    n = [expected_settings(d, 0.08, 32, 0.05, looks=looks, budget=64) for d in (0.05, 0.15, 0.3, 0.6)]
    assert all(8 <= x <= 64 for x in n) and n == sorted(n, reverse=True) and n[0] > 60 and n[-1] < 20
    assert expected_settings(0.3, 0.08, 32, 0.05, looks=looks, budget=64) == n[2]  # seeded: deterministic
    assert expected_settings(0.3, 0.0, 32, 0.05, looks=looks, budget=64) == 8  # no noise: the first look
    assert expected_settings(0.3, 0.08, 32, 0.05, looks=[8, 16, 200], budget=32) <= 32  # looks past it dropped


def test_expected_settings_agree_roughly_with_simulated_studies():
    rng, sims = np.random.default_rng(7), 40
    stops, values, sds = [], [], []
    for k in range(sims):
        s = rng.uniform(5, 40, 48)
        a, b = 5 + 0.3 * (s - 5) + rng.normal(0, 2, 48), s + rng.normal(0, 2, 48)
        ev: dict[int, Evidence] = {}

        def evidence(n: int, a=a, b=b, k=k, ev=ev) -> Evidence:
            ev.setdefault(n, Evidence.of(a[:n], b[:n], seed=k, permutations=199))
            return ev[n]
        stops.append(first_decision(evidence, schedule(looks_at(8, 48), 48), 0.05)[0].n)
        values.append(evidence(16).value)
        sds.append(evidence(16).boot.std())
    approx = expected_settings(float(np.mean(values)), float(np.mean(sds)), 16, 0.05, looks=looks_at(8, 48),
                               budget=48)
    assert abs(approx - np.mean(stops)) <= 0.35 * np.mean(stops)
