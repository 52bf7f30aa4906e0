"""Confidence-based performance estimation (CBPE): a classifier's performance on unlabeled rows.

Fitted once on labeled reference rows (a holdout the model was not trained on: training rows make its
probabilities look overconfident), it keeps per class an isotonic calibration where that lowers the
expected calibration error (``detectors.isotonic``), the realized reference metrics and the reference
standard deviations behind each metric's sampling error. On a window it turns each row's calibrated
probabilities into an expected confusion matrix (row ``i`` predicted ``k`` adds ``p_i`` to column ``k``),
reads accuracy, F1, precision and recall off it, estimates ROC AUC from the model's ranking with calibrated
probabilities as expected labels, and gives each a band of ``z`` standard errors for the window's size.

The estimate is only as good as its assumption (``CBPE_LIMITS``): calibrated probabilities and P(y|x)
unchanged. It follows NannyML's CBPE (docs/how_it_works/performance_estimation.rst), written with numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.columns import FloatArray, IntArray
from detectors.confusion import (
    METRICS,
    SamplingTerms,
    confusion,
    estimate_errors,
    macro_auc,
    matrix_metrics,
    one_hot,
    sampling_error,
    sampling_terms,
)
from detectors.estimated import CBPE_LIMITS, EstimatedPerformance, MetricEstimate
from detectors.isotonic import IsotonicMap, choose_calibration

FORMAT_VERSION = 1


def _plain(label: Any) -> Any:
    # numpy scalars to Python ones, so classes serialize to JSON and compare with stored labels
    return label.item() if isinstance(label, np.generic) else label


def _proba_matrix(y_pred_proba: Any, k: int) -> FloatArray:
    p = np.asarray(y_pred_proba, dtype=np.float64)
    if p.ndim == 1 and k == 2:
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape[1] != k:
        raise ValueError(
            f"y_pred_proba must be 1-D (binary) or have one column per class ({k}); got {p.shape}"
        )
    if not np.isfinite(p).all():
        raise ValueError("y_pred_proba contains NaN or infinite values")
    return p


@dataclass(frozen=True)
class CBPE:
    """A fitted CBPE estimator; build with ``CBPE.fit``, store with ``to_dict``, reload with ``from_dict``.

    ``calibrators`` holds one isotonic map (or ``None``: raw probabilities kept) for the positive class of a
    binary model, else one per class; ``ece_raw`` / ``ece_calibrated`` are the held-out ECEs that decided.
    ``reference`` holds the realized reference metrics, ``baseline`` (and ``baseline_error``) the estimator's
    own values on the reference rows, which the breach rule compares windows with.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=4000)
    >>> y = (rng.uniform(size=4000) < p ** 2).astype(int)  # the model's probabilities are too high
    >>> est = CBPE.fit(y, p, (p > 0.5).astype(int))
    >>> est.calibrators[0] is not None
    True
    >>> window = rng.uniform(0.0, 0.6, size=1000)  # inputs move towards low scores
    >>> r = est.estimate(window, (window > 0.5).astype(int))
    >>> truth = rng.uniform(size=1000) < window ** 2
    >>> acc = r.metric("accuracy")  # the exact expectation is 0.814
    >>> realized = float(np.mean(truth == (window > 0.5)))
    >>> round(acc.value, 2), round(realized, 2), bool(acc.lower <= realized <= acc.upper)
    (0.81, 0.83, True)
    """

    classes: tuple[Any, ...]
    calibrators: tuple[IsotonicMap | None, ...]
    ece_raw: tuple[float, ...]
    ece_calibrated: tuple[float, ...]
    reference: Mapping[str, float]
    sampling: Mapping[str, SamplingTerms]
    n_reference: int
    baseline: Mapping[str, float]
    baseline_error: Mapping[str, float]

    @classmethod
    def fit(
        cls,
        y_true: Sequence[Any] | np.ndarray,
        y_pred_proba: Any,
        y_pred: Sequence[Any] | np.ndarray | None = None,
        *,
        classes: Sequence[Any] | None = None,
        seed: int = 0,
    ) -> CBPE:
        """Fit on labeled reference rows.

        Parameters
        ----------
        y_true, y_pred : array-like
            True and predicted labels; ``y_pred`` defaults to the most probable class.
        y_pred_proba : array-like
            Positive-class probability (1-D, binary) or ``(n, K)`` probabilities in ``classes`` order.
        classes : sequence, optional
            The model's classes (``model.classes_``); defaults to the sorted labels seen.
        seed : int
            Seed of the stratified folds that decide calibration.
        """
        truth_labels = np.asarray(y_true)
        if classes is None:
            seen = set(truth_labels.tolist()) | (
                set(np.asarray(y_pred).tolist()) if y_pred is not None else set()
            )
            classes = sorted(seen)
        labels = tuple(_plain(c) for c in classes)
        if len(labels) < 2:
            raise ValueError(f"need at least two classes; got {list(labels)}")
        raw = _proba_matrix(y_pred_proba, len(labels))
        truth = _index(labels, truth_labels)
        pred = _index(labels, y_pred) if y_pred is not None else raw.argmax(axis=1)
        columns = [1] if len(labels) == 2 else list(range(len(labels)))
        choices = [choose_calibration(raw[:, c], truth == c, seed=seed) for c in columns]
        reference = matrix_metrics(confusion(one_hot(truth, len(labels)), pred))
        reference["roc_auc"] = macro_auc(raw, one_hot(truth, len(labels)))
        calibrators = tuple(c.calibrator for c in choices)
        # the estimator on its own reference rows: the baseline breaches are judged against
        probe = cls(labels, calibrators, (), (), reference, {}, int(truth.size), {}, {})
        baseline, cal = probe._values(raw, pred)
        return cls(
            classes=labels,
            calibrators=calibrators,
            ece_raw=tuple(c.ece_raw for c in choices),
            ece_calibrated=tuple(c.ece_calibrated for c in choices),
            reference=reference,
            sampling=sampling_terms(truth, pred, raw),
            n_reference=int(truth.size),
            baseline=baseline,
            baseline_error=estimate_errors(cal, pred, raw),
        )

    def _values(self, raw: FloatArray, pred: IntArray) -> tuple[dict[str, float], FloatArray]:
        cal = self.calibrate(raw)
        values = matrix_metrics(confusion(cal, pred))
        values["roc_auc"] = macro_auc(raw, cal)
        return values, cal

    def calibrate(self, y_pred_proba: Any) -> FloatArray:
        """``(n, K)`` calibrated probabilities (rows renormalized to 1 for multiclass)."""
        raw = _proba_matrix(y_pred_proba, len(self.classes))
        if len(self.classes) == 2:
            m = self.calibrators[0]
            pos = m(raw[:, 1]) if m is not None else raw[:, 1]
            return np.column_stack([1.0 - pos, pos])
        cal = np.column_stack([m(raw[:, c]) if m else raw[:, c] for c, m in enumerate(self.calibrators)])
        total = cal.sum(axis=1, keepdims=True)
        out: FloatArray = np.divide(cal, total, out=np.full_like(cal, 1.0 / cal.shape[1]), where=total > 0)
        return out

    def estimate(
        self,
        y_pred_proba: Any,
        y_pred: Sequence[Any] | np.ndarray | None = None,
        *,
        z: float = 3.0,
        min_rows: int = 50,
        n_boot: int = 100,
    ) -> EstimatedPerformance:
        """Estimated accuracy, F1, precision, recall and ROC AUC of an unlabeled window.

        The band is ``value -+ z * sampling_error`` clipped to [0, 1]; the sampling error is NannyML's,
        from the reference, and for accuracy at least the binomial error of the estimated accuracy (which
        grows when the window moves into harder regions). ``estimate_error`` comes from ``n_boot`` seeded
        bootstrap replicates of the window's rows (0 skips it). Fewer than ``min_rows`` rows give
        ``status="insufficient_data"`` and no metrics.
        """
        raw = _proba_matrix(y_pred_proba, len(self.classes))
        n = raw.shape[0]
        flags = tuple(m is not None for m in self.calibrators)
        if n < max(min_rows, 1):
            return EstimatedPerformance(
                "cbpe", "insufficient_data", n, (), CBPE_LIMITS, self.classes, (), flags
            )
        pred = _index(self.classes, y_pred) if y_pred is not None else raw.argmax(axis=1)
        values, cal = self._values(raw, pred)
        cm = confusion(cal, pred)
        own = estimate_errors(cal, pred, raw, n_boot=n_boot) if n_boot > 0 else {}
        out = []
        for name in METRICS:
            value, ref = values[name], float(self.reference.get(name, math.nan))
            se = self.band_error(name, value, n)
            lo, hi = max(0.0, value - z * se), min(1.0, value + z * se)
            base, base_se = self.baseline.get(name, math.nan), self.baseline_error.get(name, 0.0)
            out.append(MetricEstimate(name, value, se, lo, hi, ref, own.get(name, math.nan), base, base_se))
        matrix = tuple(tuple(float(v) for v in row) for row in cm)
        return EstimatedPerformance(
            "cbpe", "estimated", n, tuple(out), CBPE_LIMITS, self.classes, matrix, flags
        )

    def band_error(self, name: str, value: float, n: int) -> float:
        """Sampling error of metric ``name`` at ``value`` over ``n`` rows: the band's standard error."""
        se = sampling_error(self.sampling.get(name, ()), n)
        if name == "accuracy" and math.isfinite(value):
            se = max(se, math.sqrt(value * (1.0 - value) / n))
        return se

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (see ``docs/estimation.md`` for the format); ``from_dict`` inverts it."""
        return {
            "method": "cbpe",
            "version": FORMAT_VERSION,
            "classes": list(self.classes),
            "calibrators": [m.to_dict() if m is not None else None for m in self.calibrators],
            "ece_raw": list(self.ece_raw),
            "ece_calibrated": list(self.ece_calibrated),
            "reference": {k: (v if math.isfinite(v) else None) for k, v in self.reference.items()},
            "sampling": {k: [[list(t) for t in g] for g in groups] for k, groups in self.sampling.items()},
            "n_reference": self.n_reference,
            "baseline": {k: (v if math.isfinite(v) else None) for k, v in self.baseline.items()},
            "baseline_error": {k: (v if math.isfinite(v) else None) for k, v in self.baseline_error.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CBPE:
        """Rebuild a fitted estimator from ``to_dict``'s output."""
        if data.get("method") != "cbpe" or data.get("version") != FORMAT_VERSION:
            raise ValueError(f"not a CBPE document of version {FORMAT_VERSION}: {data.get('method')!r}")
        return cls(
            classes=tuple(data["classes"]),
            calibrators=tuple(IsotonicMap.from_dict(m) if m else None for m in data["calibrators"]),
            ece_raw=tuple(float(v) for v in data["ece_raw"]),
            ece_calibrated=tuple(float(v) for v in data["ece_calibrated"]),
            reference=_floats(data["reference"]),
            sampling={
                k: tuple(tuple((float(s), float(f)) for s, f in g) for g in groups)
                for k, groups in data["sampling"].items()
            },
            n_reference=int(data["n_reference"]),
            baseline=_floats(data["baseline"]),
            baseline_error=_floats(data["baseline_error"]),
        )


def _floats(data: Mapping[str, Any]) -> dict[str, float]:
    return {k: (math.nan if v is None else float(v)) for k, v in data.items()}


def _index(classes: tuple[Any, ...], labels: Sequence[Any] | np.ndarray) -> IntArray:
    position = {c: i for i, c in enumerate(classes)}
    values = [_plain(v) for v in np.asarray(labels).tolist()]
    unknown = sorted({repr(v) for v in values if v not in position})
    if unknown:
        raise ValueError(f"labels {', '.join(unknown[:5])} are not among the classes {list(classes)}")
    return np.fromiter((position[v] for v in values), dtype=np.int64, count=len(values))
