import numpy as np
import pytest

from detectors.correction import correct


def test_none_and_bonferroni() -> None:
    p = [0.001, 0.01, 0.03, 0.2]
    assert correct(p, [0.05] * 4, "none") == ([0.05] * 4, [True, True, True, False])
    thresholds, drift = correct(p, [0.05] * 4, "bonferroni")
    assert thresholds == [0.0125] * 4
    assert drift == [True, True, False, False]


def test_fdr_matches_manual_benjamini_hochberg() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = np.concatenate((rng.uniform(0, 0.01, 3), rng.uniform(0, 1, 12)))
        m, alpha = p.size, 0.05
        order = np.sort(p)
        passing = np.nonzero(order <= alpha * np.arange(1, m + 1) / m)[0]
        k = passing[-1] + 1 if passing.size else 0
        expected = p <= (alpha * k / m if k else -1)
        thresholds, drift = correct(p.tolist(), [alpha] * m, "fdr")
        assert drift == expected.tolist()
        assert thresholds[0] == pytest.approx(alpha * max(k, 1) / m)
        # the reported threshold is the one actually applied
        assert drift == (p <= thresholds[0]).tolist() or k == 0


def test_bad_correction_and_empty() -> None:
    with pytest.raises(ValueError, match="valid: none, bonferroni, fdr"):
        correct([0.1], [0.05], "holm")
    assert correct([], [], "fdr") == ([], [])
