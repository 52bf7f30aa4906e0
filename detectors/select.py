"""Method names, their kinds and default thresholds, and the default choice (as Evidently 0.7)."""

from __future__ import annotations

P_VALUE_METHODS = ("ks", "chisquare", "z")
DISTANCE_METHODS = ("wasserstein", "psi", "jensenshannon")
METHODS = P_VALUE_METHODS + DISTANCE_METHODS
METHODS_BY_KIND = {
    "numeric": ("ks", "wasserstein", "psi", "jensenshannon"),
    "categorical": ("chisquare", "z", "jensenshannon", "psi"),
}
DEFAULT_THRESHOLDS = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "psi": 0.1,
    "jensenshannon": 0.1,
}
SMALL_REFERENCE = 1000  # Evidently: at most this many reference rows -> p-value tests


def default_method(kind: str, n_reference: int, n_values: int) -> str:
    """Evidently 0.7's ``_get_default_stattest`` for a column.

    Parameters
    ----------
    kind : {"numeric", "categorical"}
    n_reference : int
        Rows in the reference.
    n_values : int
        Distinct non-missing values in reference and current together.

    Examples
    --------
    >>> default_method("numeric", 500, 100), default_method("numeric", 5000, 100)
    ('ks', 'wasserstein')
    >>> default_method("categorical", 500, 2), default_method("categorical", 500, 3)
    ('z', 'chisquare')
    >>> default_method("categorical", 5000, 3)
    'jensenshannon'
    """
    check_kind(kind)
    if n_reference <= SMALL_REFERENCE:
        if kind == "numeric" and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numeric" and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def check_kind(kind: str) -> None:
    """Raise ``ValueError`` unless ``kind`` is ``numeric`` or ``categorical``."""
    if kind not in METHODS_BY_KIND:
        raise ValueError(f"unknown kind {kind!r}; valid: {', '.join(METHODS_BY_KIND)}")


def check_method(method: str, kind: str | None = None) -> None:
    """Raise ``ValueError`` naming the valid methods (for ``kind`` if given).

    Examples
    --------
    >>> check_method("energy")
    Traceback (most recent call last):
    ...
    ValueError: unknown method 'energy'; valid: ks, chisquare, z, wasserstein, psi, jensenshannon
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    if kind is not None and method not in METHODS_BY_KIND[kind]:
        raise ValueError(
            f"method {method!r} does not apply to {kind} features; valid: {', '.join(METHODS_BY_KIND[kind])}"
        )


def is_p_value(method: str) -> bool:
    """True when the method's threshold is a significance level (drift when ``p_val < threshold``)."""
    return method in P_VALUE_METHODS
