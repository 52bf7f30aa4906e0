"""Drift root cause: which drifted features matter to this model, by permutation importance x drift effect.

A drift alert that lists every moved feature says nothing about whether the model cares. The champion's
permutation importance on its reference (how much its score drops when one column is shuffled) is fitted
once and stored with the profile; each drift run then ranks its drifted features by importance share x drift
effect and says so in a sentence, including when the drifted features are ones the model barely uses.
Deepchecks weights drift by importance the same way (deepchecks PR #2429).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from detectors.results import jsonable


@dataclass(frozen=True)
class FeatureImportance:
    """Mean (and std over repeats) drop of the model's score when ``feature`` is shuffled; ``share`` is its
    part of the total positive importance."""

    feature: str
    importance: float
    std: float
    share: float


@dataclass(frozen=True)
class ModelImportance:
    """Permutation importance of a fitted model on ``n_rows`` reference rows; serializes to JSON."""

    scoring: str
    n_rows: int
    n_repeats: int
    seed: int
    features: tuple[FeatureImportance, ...]

    def share(self, feature: str) -> float | None:
        """Importance share of ``feature``, or ``None`` when it was not measured."""
        return next((f.share for f in self.features if f.feature == feature), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {k: jsonable(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelImportance:
        """Inverse of ``to_dict``."""
        feats = tuple(FeatureImportance(**f) for f in data["features"])
        return cls(
            str(data["scoring"]), int(data["n_rows"]), int(data["n_repeats"]), int(data["seed"]), feats
        )


def fit_importance(
    model: Any,
    X: pd.DataFrame | np.ndarray,
    y: Sequence[Any] | np.ndarray,
    *,
    scoring: str | None = None,
    max_rows: int = 2000,
    n_repeats: int = 5,
    seed: int = 0,
    feature_names: Sequence[str] | None = None,
) -> ModelImportance:
    """Permutation importance of ``model`` on at most ``max_rows`` seeded-sampled reference rows.

    ``scoring`` is any scikit-learn scorer name (default: the model's own ``score``, accuracy or R^2); the
    cost is ``n_features * n_repeats`` predictions of ``max_rows`` rows. Columns are the model's inputs
    (a DataFrame's columns, else ``feature_names`` or ``x0, x1, ...``), the same ones drift is measured on.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"used": rng.normal(size=1000), "ignored": rng.normal(size=1000)})
    >>> y = (X["used"] + 0.3 * rng.normal(size=1000) > 0).astype(int)
    >>> imp = fit_importance(LogisticRegression().fit(X, y), X, y)
    >>> [(f.feature, round(f.share, 2)) for f in imp.features]
    [('used', 1.0), ('ignored', 0.0)]
    """
    labels = np.asarray(y)
    rows = np.arange(labels.size)
    if labels.size > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(labels.size, max_rows, replace=False))
    data: pd.DataFrame | np.ndarray
    if isinstance(X, pd.DataFrame):
        names, data = [str(c) for c in X.columns], X.iloc[rows]
    else:
        arr = np.asarray(X)
        names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(arr.shape[1])]
        data = arr[rows]
    res = permutation_importance(
        model, data, labels[rows], scoring=scoring, n_repeats=n_repeats, random_state=seed
    )
    mean = np.asarray(res["importances_mean"], dtype=np.float64)
    std = np.asarray(res["importances_std"], dtype=np.float64)
    positive = np.clip(mean, 0.0, None)
    shares = positive / positive.sum() if positive.sum() > 0 else np.zeros_like(positive)
    feats = tuple(
        FeatureImportance(n, float(m), float(s), float(sh))
        for n, m, s, sh in zip(names, mean, std, shares, strict=True)
    )
    return ModelImportance(scoring or "score", int(rows.size), n_repeats, seed, feats)


class DriftLike(Protocol):
    """What ``rank_drift`` reads of a per-feature drift result (``detectors.results.FeatureDriftResult``)."""

    @property
    def name(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def is_drift(self) -> bool: ...
    @property
    def effect_size(self) -> float | None: ...
    @property
    def distance(self) -> float | None: ...
    @property
    def statistic(self) -> float: ...


@dataclass(frozen=True)
class DriftCause:
    """One feature's place in the ranking: ``score = share * effect`` (``share`` ``None``: not measured)."""

    feature: str
    is_drift: bool
    share: float | None
    importance: float | None
    effect: float
    statistic: str
    score: float


@dataclass(frozen=True)
class DriftRootCause:
    """Features ranked (drifted first, by ``score``), ``top`` the drifted ones that matter, and a sentence.

    ``barely_used`` is true when features drifted but together carry less than ``barely_used_share`` of the
    model's importance.
    """

    causes: tuple[DriftCause, ...]
    top: tuple[str, ...]
    drifted_share: float
    barely_used: bool
    barely_used_share: float
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {k: jsonable(v) for k, v in asdict(self).items()}


def _effect(result: DriftLike) -> tuple[float, str]:
    if result.effect_size is not None:
        return float(result.effect_size), "effect size"
    if result.distance is not None:
        return float(result.distance), result.method
    return float(result.statistic), result.method


def rank_drift(
    importance: ModelImportance,
    drift: Iterable[DriftLike],
    *,
    top: int = 3,
    barely_used_share: float = 0.05,
) -> DriftRootCause:
    """Rank features by importance share x drift effect and say which drift matters to the model.

    The effect is the result's ``effect_size`` (normalized Wasserstein or total variation), else its
    ``distance``, else its ``statistic``. A drifted feature whose share is below ``barely_used_share`` is
    named as one the model barely uses.

    Examples
    --------
    >>> from detectors.results import FeatureDriftResult
    >>> imp = ModelImportance("score", 500, 5, 0, (FeatureImportance("income", 0.18, 0.01, 0.9),
    ...                                          FeatureImportance("zip", 0.004, 0.002, 0.02),
    ...                                          FeatureImportance("age", 0.016, 0.004, 0.08)))
    >>> def drift(name, effect, flag):
    ...     return FeatureDriftResult(name, "numeric", "ks", 0.1, None, 0.001 if flag else 0.5, 0.05, flag,
    ...                               "drift" if flag else "no_drift", effect_size=effect)
    >>> r = rank_drift(imp, [drift("zip", 0.4, True), drift("income", 0.15, True), drift("age", 0.01, False)])
    >>> [c.feature for c in r.causes], r.top, r.barely_used
    (['income', 'zip', 'age'], ('income',), False)
    >>> print(r.sentence)  # doctest: +NORMALIZE_WHITESPACE
    The drift that matters to this model: income (90% of the model's importance, effect size 0.15).
    Also drifted, but barely used by the model: zip.
    """
    causes = []
    for r in drift:
        share = importance.share(r.name)
        imp = next((f.importance for f in importance.features if f.feature == r.name), None)
        effect, label = _effect(r)
        score = share * effect if share is not None and np.isfinite(effect) else 0.0
        causes.append(DriftCause(r.name, bool(r.is_drift), share, imp, effect, label, score))
    causes.sort(key=lambda c: (not c.is_drift, -c.score, c.feature))
    drifted = [c for c in causes if c.is_drift]
    drifted_share = float(sum(c.share or 0.0 for c in drifted))
    matters = [c for c in drifted if c.share is not None and c.share >= barely_used_share]
    barely = bool(drifted) and drifted_share < barely_used_share
    return DriftRootCause(
        tuple(causes),
        tuple(c.feature for c in matters[:top]),
        drifted_share,
        barely,
        barely_used_share,
        _sentence(drifted, matters[:top], drifted_share, barely, barely_used_share),
    )


def _sentence(
    drifted: list[DriftCause], top: list[DriftCause], share: float, barely: bool, floor: float
) -> str:
    if not drifted:
        return "No feature drifted."
    names = ", ".join(c.feature for c in drifted)
    if barely:
        them, it = ("them", "features") if len(drifted) > 1 else ("it", "feature")
        verb = "carry" if len(drifted) > 1 else "carries"
        return (
            f"The drifted {it} {names} {verb} {share:.1%} of this model's importance: the model barely uses "
            f"{them}, so this drift is unlikely to change its performance."
        )
    parts = [
        f"{c.feature} ({c.share or 0.0:.0%} of the model's importance, {c.statistic} {c.effect:.3g})"
        for c in top
    ]
    out = f"The drift that matters to this model: {', '.join(parts)}."
    minor = [c for c in drifted if c not in top and c.share is not None and c.share < floor]
    if minor:
        out += f" Also drifted, but barely used by the model: {', '.join(c.feature for c in minor)}."
    unknown = [c.feature for c in drifted if c.share is None]
    if unknown:
        out += f" No importance measured for: {', '.join(unknown)}."
    return out
