"""A labeled window as arrays for the evidence test of its task (detectors.performance_evidence)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from detectors.performance_evidence import Baseline, BreachEvidence, baseline_from_rows, window_evidence
from service.monitor.reader import LabeledData


@dataclass(frozen=True)
class WindowArrays:
    truth: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None  # one column per label, in `labels` order
    labels: list[Any] | None


def _aligned(values: list[Any]) -> np.ndarray:
    """Class labels as one numpy dtype scikit-learn accepts (int, bool or text)."""
    if all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    return np.array([orjson.dumps(v).decode() if isinstance(v, list | dict) else str(v) for v in values])


def _proba(probabilities: list[Any], labels: list[Any]) -> np.ndarray | None:
    keys = [str(label) for label in labels]
    rows = []
    for p in probabilities:
        if not isinstance(p, dict) or any(k not in p for k in keys):
            return None
        rows.append([float(p[k]) for k in keys])
    return np.array(rows, dtype=np.float64) if rows else None


def arrays(data: LabeledData, task: str) -> WindowArrays:
    """Truth and predictions (and class probabilities) of the window, typed by the model's task."""
    if task == "regression":
        truth = np.array(data.labels, dtype=np.float64)
        return WindowArrays(truth, np.array(data.outputs, dtype=np.float64), None, None)
    truth, pred = _aligned(data.labels), _aligned(data.outputs)
    if truth.dtype != pred.dtype:  # e.g. labels sent as 1 for outputs "1": compare as text
        truth, pred = truth.astype(str), pred.astype(str)
    labels = sorted({*truth.tolist(), *pred.tolist()})
    return WindowArrays(truth, pred, _proba(data.probabilities, labels), labels)


def window_baseline(metric: str, a: WindowArrays) -> Baseline:
    """The window's own performance as a baseline (to start or to pool into one)."""
    return baseline_from_rows(metric, a.truth, a.pred, proba=a.proba, labels=a.labels)


def evidence(
    metric: str, a: WindowArrays, baseline: Baseline, *, alpha: float, min_effect: float | None
) -> BreachEvidence:
    return window_evidence(
        metric, a.truth, a.pred, baseline, proba=a.proba, labels=a.labels, alpha=alpha, min_effect=min_effect
    )
