"""Direct loss estimation (DLE): a regressor's MAE and RMSE on unlabeled rows.

Fitted on labeled reference rows, two small gradient-boosted models learn each row's absolute and squared
error from the model's inputs and its prediction (NannyML's DLE). On a window their mean predictions are
the estimated MAE and mean squared error. Like CBPE it assumes P(y|x) unchanged (``DLE_LIMITS``).

The boosted trees are kept as plain arrays (scikit-learn's public ``tree_`` attributes) and evaluated with
numpy, so the fitted estimator serializes to JSON like the reference profile. Inputs are numeric; encode
categorical columns first (``detectors.multivariate.encode``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor

from detectors.columns import FloatArray
from detectors.estimated import DLE_LIMITS, EstimatedPerformance, MetricEstimate

FORMAT_VERSION = 1


@dataclass(frozen=True)
class BoostedTrees:
    """``init + rate * sum(tree(x))`` over regression trees stored as node arrays (leaf: ``left == -1``)."""

    init: float
    rate: float
    trees: tuple[Mapping[str, tuple[float, ...]], ...]

    @classmethod
    def fit(
        cls, X: FloatArray, target: FloatArray, *, n_trees: int, depth: int, seed: int, min_leaf: int = 50
    ) -> BoostedTrees:
        """Least-squares gradient boosting of ``target`` on ``X``."""
        gb = GradientBoostingRegressor(
            n_estimators=n_trees,
            max_depth=depth,
            learning_rate=0.1,
            subsample=0.8,
            min_samples_leaf=min_leaf,
            random_state=seed,
        ).fit(X, target)
        trees = []
        for est in gb.estimators_[:, 0]:
            t = est.tree_
            trees.append(
                {
                    "left": tuple(t.children_left.tolist()),
                    "right": tuple(t.children_right.tolist()),
                    "feature": tuple(t.feature.tolist()),
                    "threshold": tuple(t.threshold.tolist()),
                    "value": tuple(t.value[:, 0, 0].tolist()),
                }
            )
        return cls(float(gb.init_.constant_.ravel()[0]), 0.1, tuple(trees))

    def predict(self, X: FloatArray) -> FloatArray:
        """Predictions for the rows of ``X``."""
        out = np.full(X.shape[0], self.init)
        rows = np.arange(X.shape[0])
        for t in self.trees:
            left, right = np.asarray(t["left"], dtype=np.int64), np.asarray(t["right"], dtype=np.int64)
            feature, threshold = np.asarray(t["feature"], dtype=np.int64), np.asarray(t["threshold"])
            node = np.zeros(X.shape[0], dtype=np.int64)
            while True:
                inner = left[node] >= 0
                if not inner.any():
                    break
                go_left = X[rows, np.where(inner, feature[node], 0)] <= threshold[node]
                node = np.where(inner, np.where(go_left, left[node], right[node]), node)
            out += self.rate * np.asarray(t["value"])[node]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "init": self.init,
            "rate": self.rate,
            "trees": [{k: list(v) for k, v in t.items()} for t in self.trees],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BoostedTrees:
        """Inverse of ``to_dict``."""
        trees = tuple({k: tuple(v) for k, v in t.items()} for t in data["trees"])
        return cls(float(data["init"]), float(data["rate"]), trees)


def _design(X: Any, y_pred: Any) -> FloatArray:
    x = np.asarray(X, dtype=np.float64)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    z = np.column_stack([x, np.asarray(y_pred, dtype=np.float64)])
    if not np.isfinite(z).all():
        raise ValueError("DLE needs finite numeric inputs and predictions; impute or encode them first")
    return z


@dataclass(frozen=True)
class DLE:
    """A fitted direct loss estimator; ``fit``, ``estimate``, ``to_dict`` / ``from_dict`` as ``CBPE``.

    ``reference`` holds the realized reference MAE and RMSE, ``baseline`` the estimator's own values on the
    reference rows, ``error_std`` the reference standard deviations of absolute and squared errors.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 2))
    >>> y = x[:, 0] + rng.normal(size=2000) * (0.2 + np.abs(x[:, 1]))  # noisier for large |x[:, 1]|
    >>> dle = DLE.fit(x, y, x[:, 0], n_trees=50)
    >>> xw = np.column_stack([rng.normal(size=1000), rng.normal(1.2, 0.5, 1000)])  # a noisier region
    >>> yw = xw[:, 0] + rng.normal(size=1000) * (0.2 + np.abs(xw[:, 1]))
    >>> mae = dle.estimate(xw, xw[:, 0]).metric("mae")
    >>> round(mae.reference, 2), round(mae.value, 2), round(float(np.mean(np.abs(yw - xw[:, 0]))), 2)
    (0.78, 1.07, 1.11)
    """

    abs_model: BoostedTrees
    sq_model: BoostedTrees
    reference: Mapping[str, float]
    baseline: Mapping[str, float]
    error_std: Mapping[str, float]
    n_reference: int

    @classmethod
    def fit(
        cls,
        X: Any,
        y_true: Sequence[float] | np.ndarray,
        y_pred: Sequence[float] | np.ndarray,
        *,
        n_trees: int = 100,
        depth: int = 3,
        seed: int = 0,
    ) -> DLE:
        """Fit the two loss models on labeled reference rows (numeric ``X``, true and predicted values)."""
        z = _design(X, y_pred)
        err = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
        ab, sq = np.abs(err), err**2
        abs_model = BoostedTrees.fit(z, ab, n_trees=n_trees, depth=depth, seed=seed)
        sq_model = BoostedTrees.fit(z, sq, n_trees=n_trees, depth=depth, seed=seed)
        probe = cls(abs_model, sq_model, {}, {}, {}, 0)
        return cls(
            abs_model,
            sq_model,
            {"mae": float(ab.mean()), "rmse": float(np.sqrt(sq.mean()))},
            probe._values(z)[0],
            {"abs": float(ab.std()), "sq": float(sq.std())},
            int(err.size),
        )

    def _values(self, z: FloatArray) -> tuple[dict[str, float], FloatArray, FloatArray]:
        ab, sq = np.clip(self.abs_model.predict(z), 0, None), np.clip(self.sq_model.predict(z), 0, None)
        return {"mae": float(ab.mean()), "rmse": float(np.sqrt(sq.mean()))}, ab, sq

    def estimate(self, X: Any, y_pred: Any, *, z: float = 3.0, min_rows: int = 50) -> EstimatedPerformance:
        """Estimated MAE and RMSE of an unlabeled window, bands of ``z`` standard errors (NannyML's:
        reference error spread over ``sqrt(n)``, RMSE by the delta method)."""
        design = _design(X, y_pred)
        n = design.shape[0]
        if n < max(min_rows, 1):
            return EstimatedPerformance("dle", "insufficient_data", n, (), DLE_LIMITS)
        values, ab, sq = self._values(design)
        n_ref = max(self.n_reference, 1)
        out = []
        for name in ("mae", "rmse"):
            value = values[name]
            if name == "mae":
                se, own = self.error_std["abs"] / math.sqrt(n), float(ab.std()) / math.sqrt(n)
                base_se = self.error_std["abs"] / math.sqrt(n_ref)
            else:
                scale = 2.0 * max(value, 1e-12)
                se, own = self.error_std["sq"] / math.sqrt(n) / scale, float(sq.std()) / math.sqrt(n) / scale
                base_se = self.error_std["sq"] / math.sqrt(n_ref) / scale
            lo, hi = max(0.0, value - z * se), value + z * se
            ref, base = self.reference[name], self.baseline[name]
            out.append(MetricEstimate(name, value, se, lo, hi, ref, own, base, base_se))
        return EstimatedPerformance("dle", "estimated", n, tuple(out), DLE_LIMITS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``from_dict`` inverts it."""
        return {
            "method": "dle",
            "version": FORMAT_VERSION,
            "abs_model": self.abs_model.to_dict(),
            "sq_model": self.sq_model.to_dict(),
            "reference": dict(self.reference),
            "baseline": dict(self.baseline),
            "error_std": dict(self.error_std),
            "n_reference": self.n_reference,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DLE:
        """Rebuild a fitted estimator from ``to_dict``'s output."""
        if data.get("method") != "dle" or data.get("version") != FORMAT_VERSION:
            raise ValueError(f"not a DLE document of version {FORMAT_VERSION}: {data.get('method')!r}")
        return cls(
            BoostedTrees.from_dict(data["abs_model"]),
            BoostedTrees.from_dict(data["sq_model"]),
            {k: float(v) for k, v in data["reference"].items()},
            {k: float(v) for k, v in data["baseline"].items()},
            {k: float(v) for k, v in data["error_std"].items()},
            int(data["n_reference"]),
        )
