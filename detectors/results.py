"""Typed, frozen, JSON-serializable results named like alibi-detect: is_drift, p_val, distance, threshold."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

STATUSES = ("drift", "no_drift", "insufficient_data", "data_quality")


def jsonable(value: Any) -> Any:
    """Tuples to lists and non-finite floats to ``None`` (strict JSON has no NaN or Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class FeatureDriftResult:
    """Drift of one column.

    ``statistic`` is the test's own statistic (KS D, chi-squared, Z, or the distance); ``distance`` the
    distance where the method has one; ``threshold`` the (corrected) threshold actually compared with
    ``p_val`` (drift when below) or ``distance`` (drift when at or above). ``effect_size`` is the normalized
    Wasserstein distance (numeric) or total variation distance (categorical), which p-value tests must also
    reach (``effect_size_floor``). ``error_bound`` bounds ``|statistic - exact|`` for binned statistics.

    The missing-value test (``detectors.missing``) has its own fields: ``missing_is_drift`` when the missing
    rate rose significantly (``missing_p_val < missing_threshold``) by at least the minimum effect
    (``missing_effect_size``, Cohen's h). Its breach sets ``status`` to ``data_quality`` (whatever the
    distribution test said, which ``is_drift`` still reports) and ``reason`` says why in words.
    """

    name: str
    kind: str
    method: str
    statistic: float
    distance: float | None
    p_val: float | None
    threshold: float
    is_drift: bool
    status: str
    effect_size: float | None = None
    exact: bool = True
    error_bound: float | None = None
    n_reference: int = 0
    n_current: int = 0
    missing_rate_ref: float = 0.0
    missing_rate_cur: float = 0.0
    out_of_range_share: float | None = None
    unseen_share: float | None = None
    unseen_categories: tuple[Any, ...] = ()
    quality_issues: tuple[str, ...] = ()
    role: str = "feature"
    missing_is_drift: bool = False
    missing_p_val: float | None = None
    missing_effect_size: float | None = None
    missing_threshold: float = 0.01
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {k: jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class MultivariateResult:
    """Domain classifier: cross-validated ROC AUC of telling current rows from reference rows.

    Drift when ``auc >= threshold`` and the AUC's one-sided Mann-Whitney ``p_val < alpha``.
    """

    method: str
    auc: float
    p_val: float
    threshold: float
    alpha: float
    is_drift: bool
    status: str
    n_reference: int
    n_current: int
    features: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {k: jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class DatasetDriftResult:
    """Result of ``detectors.check.run_check``.

    ``dataset_drift`` is true when the share of changed features (drifted, or with a missing-value breach)
    reaches the ``drift_share`` option or the domain classifier detects drift; ``status`` is
    ``insufficient_data`` when the window is too small. ``data_quality`` is true when any input feature's
    missing rate breached (``data_quality_features``), whether or not that makes the dataset drift.
    """

    status: str
    dataset_drift: bool
    drift_share: float
    n_reference: int
    n_current: int
    features: tuple[FeatureDriftResult, ...]
    multivariate: MultivariateResult | None = None
    predictions: tuple[FeatureDriftResult, ...] = ()
    prediction_drift: bool = False
    performance: Any = None  # detectors.performance.PerformanceResult | None
    correction: str = "none"
    drift_share_threshold: float = 0.5
    data_quality: bool = False

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Names of the input features flagged as drifted."""
        return tuple(f.name for f in self.features if f.is_drift)

    @property
    def data_quality_features(self) -> tuple[str, ...]:
        """Names of the input features whose missing rate breached."""
        return tuple(f.name for f in self.features if f.missing_is_drift)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON document of ``driftloop check --json``."""
        return {
            "status": self.status,
            "dataset_drift": self.dataset_drift,
            "drift_share": jsonable(self.drift_share),
            "drift_share_threshold": self.drift_share_threshold,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "correction": self.correction,
            "drifted_features": list(self.drifted_features),
            "data_quality": self.data_quality,
            "data_quality_features": list(self.data_quality_features),
            "features": [f.to_dict() for f in self.features],
            "multivariate": self.multivariate.to_dict() if self.multivariate else None,
            "predictions": [f.to_dict() for f in self.predictions],
            "prediction_drift": self.prediction_drift,
            "performance": self.performance.to_dict() if self.performance is not None else None,
        }
