import pytest

from detectors.select import DEFAULT_THRESHOLDS, METHODS, check_kind, check_method, default_method, is_p_value


@pytest.mark.parametrize(
    ("kind", "n_ref", "n_values", "expected"),
    [
        ("numeric", 1000, 50, "ks"),
        ("numeric", 1001, 50, "wasserstein"),
        ("numeric", 1000, 4, "chisquare"),
        ("numeric", 1000, 2, "z"),
        ("numeric", 5000, 4, "jensenshannon"),
        ("categorical", 10, 3, "chisquare"),
        ("categorical", 10, 2, "z"),
        ("categorical", 2000, 2, "jensenshannon"),
    ],
)
def test_default_method_as_evidently(kind: str, n_ref: int, n_values: int, expected: str) -> None:
    assert default_method(kind, n_ref, n_values) == expected


def test_errors_name_valid_values() -> None:
    with pytest.raises(ValueError, match="valid: numeric, categorical"):
        check_kind("text")
    with pytest.raises(ValueError, match="valid: chisquare, z, jensenshannon, psi"):
        check_method("ks", "categorical")
    with pytest.raises(ValueError, match="valid: ks"):
        check_method("hellinger")


def test_every_method_has_a_default_threshold_and_a_kind() -> None:
    assert set(DEFAULT_THRESHOLDS) == set(METHODS)
    assert [m for m in METHODS if is_p_value(m)] == ["ks", "chisquare", "z"]
