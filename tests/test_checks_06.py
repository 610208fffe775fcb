"""The checks of notebook 06 (is the explanation right?): right answers pass, planted mistakes get their hint."""

import numpy as np
import pytest
from scipy import stats

from tinycam.course import checks, lecture
from tinycam.course.checks import nb06_evaluating

from check_harness import check_tests

EXAMPLE = lecture.worked_example()


def _hirescam(acts, grads):
    return np.clip(np.einsum("...kij,...kij->...ij", acts, grads), 0, None)


def _spearman(a, b):
    return stats.spearmanr(np.ravel(a), np.ravel(b)).statistic  # scipy ranks ties by their average rank


def _deletion_auc(probabilities):
    steps = np.shape(probabilities)[-1] - 1
    return np.trapezoid(probabilities, np.linspace(0.0, 1.0, steps + 1), axis=-1)


# exercise -> a correct answer (written differently from the reference)
CORRECT = {
    "hirescam_map": _hirescam,
    "spearman_rho": _spearman,
    "deletion_auc": _deletion_auc,
}


def _hard_coded(value):
    return lambda *args: np.array(value)


def _pearson(a, b):
    return stats.pearsonr(np.ravel(a), np.ravel(b)).statistic


def _ordinal_spearman(a, b):
    return _pearson(np.argsort(np.argsort(np.ravel(a), kind="stable")),
                     np.argsort(np.argsort(np.ravel(b), kind="stable")))


# exercise -> [(wrong answer, a fragment of the hint it must get)]: answers written otherwise than the known mistakes
WRONG = {
    "hirescam_map": [
        (lambda a, g: np.clip((a * g.mean(axis=(-2, -1), keepdims=True)).sum(axis=-3), 0, None), "Grad-CAM's map"),
        (lambda a, g: np.einsum("...kij,...kij->...ij", a, g), "apply a ReLU"),
        (lambda a, g: np.clip(np.einsum("...kij,...kij->...ij", a, np.clip(g, 0, None)), 0, None), "LayerCAM"),
        (lambda a, g: np.clip(a * g, 0, None).sum(axis=-3), "not on each map's product"),
        (lambda a, g: np.abs(np.einsum("...kij,...kij->...ij", a, g)), "every activation is weighted"),
        (lambda a, g: np.clip(np.swapaxes(np.einsum("...kij,...kij->...ij", a, g), -1, -2), 0, None),
         "one value per pixel"),  # transposed maps
        (_hard_coded(np.clip((EXAMPLE["acts"] * EXAMPLE["grads"]).sum(axis=0), 0, None)), "every activation"),
    ],
    "spearman_rho": [
        (_pearson, "not the values themselves"),
        (_ordinal_spearman, "share one rank"),
        (lambda a, b: _pearson(stats.rankdata(a, method="min"), stats.rankdata(b, method="min")), "not the lowest"),
        (lambda a, b: _pearson(stats.rankdata(a, method="dense"), stats.rankdata(b, method="dense")),
         "numbering the distinct values"),
        (lambda a, b: _spearman(np.abs(a), np.abs(b)), "sign included"),
        (lambda a, b: 1 - 6 * np.sum((stats.rankdata(a) - stats.rankdata(b)) ** 2) / (np.size(a) * (np.size(a) ** 2 - 1)),
         "holds only when no two values are tied"),
        (lambda a, b: _spearman(a, b) ** 2, "replace every value of each map by its rank"),  # ρ² instead of ρ
        (_hard_coded(0.8165), "replace every value"),  # the visible example's answer, rounded
    ],
    "deletion_auc": [
        (lambda p: np.trapezoid(p, axis=-1), "not 1"),
        (lambda p: np.mean(p, axis=-1), "plain average"),
        (lambda p: np.asarray(p)[..., :-1].mean(axis=-1), "only the one before the step"),
        (lambda p: np.asarray(p)[..., 1:].mean(axis=-1), "only the one after the step"),
        (lambda p: np.trapezoid(p, dx=1 / np.shape(p)[-1], axis=-1), "not 1/(n + 1)"),
        (lambda p: 1 - _deletion_auc(p), "not above it"),
        (lambda p: np.trapezoid(p, dx=1 / (np.shape(p)[0] - 1), axis=0), "one area per curve"),
        (_hard_coded(0.4), "one area per curve"),  # the visible example's answer
    ],
}


def test_cases_are_drawn_from_the_seed_and_start_with_the_notebooks_example():
    for name in CORRECT:
        cases = checks.EXERCISES[name].cases
        first, again, other = cases(7), cases(7), cases(8)
        assert ("handwritten" in first[0][0] or "notebook's" in first[0][0]) and len(first) >= 6
        assert all(np.array_equal(x, y) for x, y in zip(first[0][1], other[0][1], strict=True))  # fixed example
        for (_, args), (_, args_again), (_, args_other) in zip(first[1:], again[1:], other[1:], strict=True):
            assert all(np.asarray(x).dtype == np.float64 for x in args)
            assert all(np.array_equal(x, y) for x, y in zip(args, args_again, strict=True))
            assert not all(np.array_equal(x, y) for x, y in zip(args, args_other, strict=True))


def test_the_visible_examples_are_worked_by_hand():
    # HiResCAM of notebook 01's maps: Σ_k g ⊙ A at pixel (0, 0) is 2·1 + 3·1.5 + 0.1·(−2) = 6.3, at (0, 1)
    # 3·(−1) + 5·0.1 + (−0.1)·3 = −2.8, which the ReLU makes 0
    np.testing.assert_allclose(_hirescam(EXAMPLE["acts"], EXAMPLE["grads"])[0], [6.3, 0.0])
    # the deletion example: 4 steps of 1/4, trapezoids (0.9 + 0.6)/2 + (0.6 + 0.3)/2 + (0.3 + 0.2)/2 + (0.2 + 0.1)/2
    # = 1.6, times 1/4
    assert nb06_evaluating._deletion_expected(nb06_evaluating.DELETION_EXAMPLE) == pytest.approx(0.4, abs=1e-15)
    # the Spearman example: average ranks a = (1.5, 1.5, 4.5, 1.5, 6, 7, 1.5, 4.5, 8), b = (1.5, 4.5, 4.5, 1.5, 7, 6,
    # 1.5, 1.5, 8), both of mean 4; centred, Σ products = 44.5 and Σ squares = 54.5 each, so ρ = 44.5 / 54.5
    a = np.array([1.5, 1.5, 4.5, 1.5, 6, 7, 1.5, 4.5, 8]) - 4
    b = np.array([1.5, 4.5, 4.5, 1.5, 7, 6, 1.5, 1.5, 8]) - 4
    assert (a * b).sum() == 44.5 and (a * a).sum() == (b * b).sum() == 54.5
    assert nb06_evaluating._spearman_expected(*nb06_evaluating.SPEARMAN_EXAMPLE) == pytest.approx(44.5 / 54.5,
                                                                                                rel=1e-12)


def test_the_random_cases_hold_ties_and_signed_values_where_the_mistakes_show():
    cases = checks.EXERCISES["spearman_rho"].cases(0)
    assert sum(len(np.unique(a)) < np.size(a) for _, (a, _) in cases) >= 4  # ties: average ranks matter
    assert any((a < 0).any() for _, (a, _) in cases)  # signed: |·| matters
    assert not any(np.ptp(m) == 0 for _, pair in cases for m in pair)  # no constant map (ρ undefined)
    deletion = checks.EXERCISES["deletion_auc"].cases(0)
    assert any(np.ndim(p) > 1 for _, (p,) in deletion) and all(((p >= 0) & (p <= 1)).all() for _, (p,) in deletion)


globals().update(check_tests("06", CORRECT, WRONG))
