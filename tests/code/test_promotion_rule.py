"""The promotion rule: a challenger is promoted only when it beats the champion by the margin, on
the same rows, with a paired bootstrap lower bound above 0, and it passes the gates."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from driftgate.config import RetrainingConfig
from driftgate.errors import DataError
from driftgate.retraining.rule import decide, f1_at, paired_difference

SETTINGS = RetrainingConfig()  # absolute margin 0.01, 95%, 2000 draws


def evaluation_rows(rows=6000, seed=1):
    """Labels (about 1 in 4 positive) and a champion whose scores carry some signal (F1 near 0.5)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.25).astype(int)
    scores = np.clip(0.35 + 0.3 * y + rng.normal(0, 0.2, rows), 0, 1)
    return y, scores


def correcting(y, scores, share, threshold=0.5, seed=2):
    """A challenger: the champion with `share` of its wrong decisions turned right."""
    rng = np.random.default_rng(seed)
    wrong = np.flatnonzero((scores >= threshold) != (y == 1))
    fixed = rng.choice(wrong, size=int(round(share * len(wrong))), replace=False)
    better = scores.copy()
    better[fixed] = np.where(y[fixed] == 1, 0.9, 0.1)
    return better


def test_f1_at_matches_scikit_learn_including_no_positive_decisions():
    y, scores = evaluation_rows(500)
    assert f1_at(y, scores, 0.5) == pytest.approx(f1_score(y, scores >= 0.5))
    assert f1_at(y, scores, 2.0) == 0.0


def test_identical_models_never_promote():
    y, scores = evaluation_rows()
    decision = decide(y, scores, scores.copy(), 0.5, 0.5, SETTINGS)
    assert not decision.promote
    assert decision.difference == 0.0 and decision.lower == 0.0
    assert decision.reason.startswith("rejected: +0.000 is under the margin 0.010")


def test_identical_models_never_promote_even_with_no_margin():
    y, scores = evaluation_rows()
    decision = decide(y, scores, scores, 0.5, 0.5, RetrainingConfig(margin=0.0))
    assert not decision.promote
    assert "not above 0" in decision.reason


def test_challenger_correcting_30_percent_of_the_champions_errors_promotes():
    y, scores = evaluation_rows()
    decision = decide(y, scores, correcting(y, scores, 0.3), 0.5, 0.5, SETTINGS)
    assert decision.promote
    assert decision.rows == len(y)
    assert decision.challenger_f1 > decision.champion_f1
    assert decision.difference == pytest.approx(decision.challenger_f1 - decision.champion_f1)
    assert 0 < decision.lower < decision.difference
    assert decision.reason == (f"promoted: F1 {decision.champion_f1:.3f} -> {decision.challenger_f1:.3f} "
                               f"(+{decision.difference:.3f} >= margin 0.010), 95% lower bound +{decision.lower:.3f} > 0 "
                               "with the rows' noise only")


def test_a_worse_challenger_is_rejected():
    y, scores = evaluation_rows()
    decision = decide(y, correcting(y, scores, 0.3), scores, 0.5, 0.5, SETTINGS)
    assert not decision.promote and decision.difference < 0 and decision.lower < 0


def test_relative_margin_is_a_share_of_the_champions_f1():
    y, scores = evaluation_rows()
    challenger = correcting(y, scores, 0.1)
    absolute = decide(y, scores, challenger, 0.5, 0.5, SETTINGS)
    assert absolute.promote
    relative = decide(y, scores, challenger, 0.5, 0.5, RetrainingConfig(margin=0.2, margin_kind="relative"))
    assert relative.required == pytest.approx(0.2 * relative.champion_f1)
    assert relative.difference < relative.required
    assert not relative.promote
    assert relative.margin_kind == "relative" and relative.margin == 0.2
    assert f"under the required {relative.required:.3f} (20% of the champion's F1)" in relative.reason
    small = decide(y, scores, challenger, 0.5, 0.5, RetrainingConfig(margin=0.02, margin_kind="relative"))
    assert small.promote and small.required == pytest.approx(0.02 * small.champion_f1)


def test_gates_veto_a_better_challenger_and_say_so_first():
    y, scores = evaluation_rows()
    decision = decide(y, scores, correcting(y, scores, 0.3), 0.5, 0.5, SETTINGS, gates_passed=False,
                      gate_reason="drift share 0.62 > 0.55")
    assert not decision.promote and not decision.gates_passed
    assert decision.reason == "rejected: the challenger fails the gates (drift share 0.62 > 0.55)"


def test_a_gain_over_the_margin_on_few_rows_is_rejected_as_noise():
    y, scores = evaluation_rows(rows=60, seed=4)
    challenger = correcting(y, scores, 0.1)
    decision = decide(y, scores, challenger, 0.5, 0.5, SETTINGS)
    assert decision.difference >= 0.01
    assert decision.lower <= 0 and not decision.promote
    assert "is not above 0, so the gain may be noise" in decision.reason


def test_each_model_is_judged_at_its_own_threshold():
    y, scores = evaluation_rows()
    shifted = np.clip(correcting(y, scores, 0.3) + 0.2, 0, 1.2) / 1.2  # same ranking, threshold moves
    decision = decide(y, scores, shifted, 0.5, (0.5 + 0.2) / 1.2, SETTINGS)
    assert decision.challenger_f1 == pytest.approx(f1_at(y, correcting(y, scores, 0.3), 0.5))
    assert decision.promote


def slow_lower_bound(y, champion, challenger, draws, confidence, seed):
    """The same bootstrap one resample at a time: draw how many rows of each kind the resample
    holds, build those rows, and score both models on them with scikit-learn."""
    kinds = 4 * y + 2 * champion + challenger
    example = {k: int(np.flatnonzero(kinds == k)[0]) for k in np.unique(kinds)}
    shares = np.bincount(kinds, minlength=8) / len(y)
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(draws):
        counts = rng.multinomial(len(y), shares)
        rows = np.concatenate([np.full(counts[k], example[k]) for k in range(8) if counts[k]])
        differences.append(f1_score(y[rows], challenger[rows], zero_division=0)
                           - f1_score(y[rows], champion[rows], zero_division=0))
    return float(np.quantile(differences, 1 - confidence))


def test_lower_bound_equals_a_slow_loop_with_the_same_seed():
    y, scores = evaluation_rows(rows=300, seed=7)
    champion, challenger = scores >= 0.5, correcting(y, scores, 0.2) >= 0.5
    difference, lower = paired_difference(y, champion, challenger, draws=300, confidence=0.9, seed=11)
    assert difference == pytest.approx(f1_score(y, challenger) - f1_score(y, champion))
    assert lower == pytest.approx(slow_lower_bound(y, champion, challenger, 300, 0.9, 11), abs=1e-12)


def test_lower_bound_agrees_with_resampling_row_indices():
    """Counting kinds is the index bootstrap: the same bound, up to Monte Carlo error."""
    y, scores = evaluation_rows(rows=2000, seed=8)
    champion, challenger = scores >= 0.5, correcting(y, scores, 0.1) >= 0.5
    _, lower = paired_difference(y, champion, challenger, draws=4000, confidence=0.95, seed=0)
    rng = np.random.default_rng(1)
    index = rng.integers(0, len(y), size=(4000, len(y)))
    yb, cb, kb = y[index] == 1, champion[index], challenger[index]

    def f1(pred):
        tp = (yb & pred).sum(1)
        return 2 * tp / (2 * tp + (~yb & pred).sum(1) + (yb & ~pred).sum(1))

    assert lower == pytest.approx(float(np.quantile(f1(kb) - f1(cb), 0.05)), abs=0.004)


def test_same_seed_same_bound_and_the_seed_matters():
    y, scores = evaluation_rows(rows=1000)
    champion, challenger = scores >= 0.5, correcting(y, scores, 0.1) >= 0.5
    first = paired_difference(y, champion, challenger, 500, 0.95, seed=3)
    assert first == paired_difference(y, champion, challenger, 500, 0.95, seed=3)
    assert first[1] != paired_difference(y, champion, challenger, 500, 0.95, seed=4)[1]


@pytest.mark.parametrize(("labels", "champion", "challenger", "where", "problem"), [
    ([0, 1, 1], [0.2, 0.8, 0.6], [0.2, 0.8], "challenger scores", "does not match the 3 labels"),
    ([0, 1, 2], [0.2, 0.8, 0.6], [0.2, 0.8, 0.6], "labels", "1 label(s) are not 0 or 1 (e.g. 2)"),
    ([0, 1, np.nan], [0.2, 0.8, 0.6], [0.2, 0.8, 0.6], "labels", "are not 0 or 1"),
    (["no", "yes", "yes"], [0.2, 0.8, 0.6], [0.2, 0.8, 0.6], "labels", "must be 0 or 1"),
    ([0, 1, 1], [0.2, np.nan, 0.6], [0.2, 0.8, 0.6], "champion scores", "1 score(s) are NaN or infinite (first at row 1)"),
    ([0, 1, 1], [0.2, 0.8, 0.6], [0.2, 0.8, np.inf], "challenger scores", "NaN or infinite"),
    ([], [], [], "labels", "non-empty"),
])
def test_bad_inputs_are_data_errors_naming_what_is_wrong(labels, champion, challenger, where, problem):
    with pytest.raises(DataError) as caught:
        decide(np.array(labels), np.array(champion), np.array(challenger), 0.5, 0.5, SETTINGS)
    assert caught.value.where == f"promotion rule: {where}"
    assert problem in caught.value.problem


def test_bad_decisions_and_bootstrap_settings_are_data_errors():
    y = np.array([0, 1, 1])
    with pytest.raises(DataError, match="challenger decisions"):
        paired_difference(y, np.array([True, False, True]), np.array([0.2, 0.8, 0.6]), 100, 0.95, 0)
    with pytest.raises(DataError, match="champion decisions"):
        paired_difference(y, np.array([True, False]), np.array([True, False, True]), 100, 0.95, 0)
    with pytest.raises(DataError, match="draws"):
        paired_difference(y, y == 1, y == 1, 0, 0.95, 0)
    with pytest.raises(DataError, match="confidence"):
        paired_difference(y, y == 1, y == 1, 100, 1.5, 0)


def test_with_refits_the_recipes_means_decide_and_the_bound_carries_their_noise():
    y, scores = evaluation_rows()
    better = correcting(y, scores, 0.3)
    alone = decide(y, scores, better, 0.5, 0.5, SETTINGS)
    base, gain = alone.champion_f1, alone.challenger_f1
    champion_refits, challenger_refits = [base - 0.004, base + 0.004, base], [gain + 0.003, gain - 0.003, gain]
    recipes = decide(y, scores, better, 0.5, 0.5, SETTINGS, champion_refits=champion_refits, challenger_refits=challenger_refits)
    assert recipes.champion_f1 == pytest.approx(np.mean([base, *champion_refits]))
    assert recipes.challenger_f1 == pytest.approx(np.mean([gain, *challenger_refits]))
    assert recipes.difference == pytest.approx(recipes.challenger_f1 - recipes.champion_f1)
    assert (recipes.champion_model_f1, recipes.challenger_model_f1) == (alone.champion_f1, alone.challenger_f1)
    assert (recipes.champion_fits, recipes.challenger_fits) == (4, 4)
    assert recipes.champion_sd == pytest.approx(np.std([base, *champion_refits], ddof=1))
    assert recipes.lower < alone.lower  # the means' noise widens the bound
    assert recipes.promote and "over 4 fits each: each model and its recipe refitted" in recipes.reason


def test_refits_that_spread_as_much_as_the_gain_keep_the_challenger_out():
    y, scores = evaluation_rows()
    better = correcting(y, scores, 0.12)
    alone = decide(y, scores, better, 0.5, 0.5, SETTINGS)
    assert alone.promote and alone.champion_sd is None and alone.champion_fits == 1
    gain = alone.difference
    spread = [-gain, gain, -gain, gain]  # refits that differ by as much as the gain
    noisy = decide(y, scores, better, 0.5, 0.5, SETTINGS, champion_refits=[alone.champion_f1 + s for s in spread],
                   challenger_refits=[alone.challenger_f1 + s for s in spread])
    assert noisy.difference == pytest.approx(gain) and not noisy.promote and noisy.lower < 0
    assert "with the rows' and the refits' noise" in noisy.reason and "is not above 0, so the gain may be noise" in noisy.reason


def test_a_champion_without_refits_borrows_the_challengers_spread():
    y, scores = evaluation_rows()
    better = correcting(y, scores, 0.3)
    refits = [0.01, -0.01, 0.005, -0.005]
    one_side = decide(y, scores, better, 0.5, 0.5, SETTINGS, champion_refits=[],
                      challenger_refits=[decide(y, scores, better, 0.5, 0.5, SETTINGS).challenger_f1 + r for r in refits])
    assert one_side.champion_fits == 1 and one_side.challenger_fits == 5
    assert one_side.champion_sd == pytest.approx(one_side.challenger_sd)


def test_a_spread_needs_two_fits_on_one_side_and_finite_f1s():
    y, scores = evaluation_rows(600)
    with pytest.raises(DataError, match="one fit per side has no spread"):
        decide(y, scores, scores, 0.5, 0.5, SETTINGS, champion_refits=[], challenger_refits=[])
    with pytest.raises(DataError, match="challenger refits"):
        decide(y, scores, scores, 0.5, 0.5, SETTINGS, champion_refits=[0.4, 0.5], challenger_refits=[float("nan")])
    with pytest.raises(ValueError, match="one refit has no spread"):
        RetrainingConfig(replicas=1)
