"""The reference profile: everything a drift check needs from the reference, fitted once, stored as JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from detectors import binning
from detectors.columns import (
    Column,
    Data,
    FloatArray,
    IntArray,
    as_float,
    as_objects,
    column_names,
    get_column,
    is_numeric,
    n_unique,
    per_column,
    row_count,
    take,
    to_python,
    value_counts,
)

KINDS = ("numeric", "categorical")
MAX_CATEGORIES_UNIQUE = 5  # a numeric column with at most this many distinct values is categorical
FORMAT_VERSION = 1
# edges from a sample of EDGE_SAMPLE_PER_BIN values per bin once a column has SAMPLED_EDGES_FACTOR times
# that many: each sampled bin then holds 64 draws, so a cell's reference mass stays within ~±25% of
# 1 / n_bins, and the binned error bounds (computed from the exact counts) stay as tight.
EDGE_SAMPLE_PER_BIN = 64
SAMPLED_EDGES_FACTOR = 8


@dataclass(frozen=True, eq=False)
class FeatureProfile:
    """What the reference says about one column.

    Numeric: quantile ``edges`` and reference ``counts`` per cell (see ``detectors.binning``) plus summary
    statistics. Categorical: ``categories`` and their ``category_counts``. Both: non-missing count ``n`` and
    ``n_missing``.
    """

    name: str
    kind: str
    n: int
    n_missing: int
    edges: FloatArray = field(default_factory=lambda: np.empty(0))
    counts: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    categories: tuple[Any, ...] = ()
    category_counts: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    mean: float | None = None
    std: float | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def missing_rate(self) -> float:
        """Share of reference rows where this column is missing."""
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    @cached_property
    def cell_index(self) -> binning.CellIndex:
        """Lookup table for binning current values (built lazily, never serialized)."""
        return binning.CellIndex.build(self.edges)

    @classmethod
    def fit_numeric(cls, name: str, values: FloatArray, n_bins: int) -> FeatureProfile:
        """Profile a numeric column (NaN = missing): a large continuous column takes its edges from a sorted
        sample (``binning.sampled_edges``), anything else sorts once."""
        missing = np.isnan(values)
        present = values[~missing] if missing.any() else values
        sampled = present.size > SAMPLED_EDGES_FACTOR * EDGE_SAMPLE_PER_BIN * n_bins
        if sampled:
            edges, sampled = binning.sampled_edges(present, n_bins, EDGE_SAMPLE_PER_BIN)
        if sampled:
            counts = binning.CellIndex.build(edges).counts(present)
        else:
            present = np.sort(present)
            edges = binning.quantile_edges(present, n_bins)
            counts = binning.counts_of_sorted(edges, present)
        has = present.size > 0
        mean = float(present.mean()) if has else None
        return cls(
            name=name,
            kind="numeric",
            n=int(present.size),
            n_missing=int(values.size - present.size),
            edges=edges,
            counts=counts,
            mean=mean,
            std=_std(present, mean) if mean is not None else None,
            minimum=float(edges[0]) if has else None,
            maximum=float(edges[-1]) if has else None,
        )

    @classmethod
    def fit_categorical(cls, name: str, counts: dict[Any, int], n_missing: int) -> FeatureProfile:
        """Profile a categorical column from its value counts."""
        return cls(
            name=name,
            kind="categorical",
            n=int(sum(counts.values())),
            n_missing=n_missing,
            categories=tuple(counts),
            category_counts=np.array(list(counts.values()), dtype=np.int64),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as lists)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "n": self.n,
            "n_missing": self.n_missing,
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "categories": list(self.categories),
            "category_counts": self.category_counts.tolist(),
            "mean": self.mean,
            "std": self.std,
            "minimum": self.minimum,
            "maximum": self.maximum,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureProfile:
        """Inverse of ``to_dict``."""
        if d["kind"] not in KINDS:
            raise ValueError(f"unknown feature kind {d['kind']!r}; valid: {', '.join(KINDS)}")
        return cls(
            name=d["name"],
            kind=d["kind"],
            n=int(d["n"]),
            n_missing=int(d["n_missing"]),
            edges=np.asarray(d["edges"], dtype=np.float64),
            counts=np.asarray(d["counts"], dtype=np.int64),
            categories=tuple(d["categories"]),
            category_counts=np.asarray(d["category_counts"], dtype=np.int64),
            mean=d.get("mean"),
            std=d.get("std"),
            minimum=d.get("minimum"),
            maximum=d.get("maximum"),
        )


def _std(values: FloatArray, mean: float, chunk: int = 1 << 15) -> float:
    """Population standard deviation, as ``values.std()``, in cache-sized chunks: no array-sized temporary
    (on a fresh process a million-value temporary costs more in page faults than the arithmetic)."""
    total = 0.0
    buffer = np.empty(min(chunk, values.size))
    for start in range(0, values.size, chunk):
        part = values[start : start + chunk]
        dev = buffer[: part.size]
        np.subtract(part, mean, out=dev)
        np.multiply(dev, dev, out=dev)
        total += float(dev.sum())
    return math.sqrt(total / values.size)


def fit_feature(data: Data, name: str, categorical: bool | None, n_bins: int) -> FeatureProfile:
    """Profile one column, inferring its kind unless ``categorical`` says it."""
    return fit_column(get_column(data, name), name, categorical, n_bins)


def fit_column(column: Column, name: str, categorical: bool | None, n_bins: int) -> FeatureProfile:
    """Profile one column's values (see ``fit_feature``)."""
    if categorical is None:
        categorical = not is_numeric(column) or _few_values(column)
    if categorical:
        counts = value_counts(column)
        return FeatureProfile.fit_categorical(name, counts, int(len(column) - sum(counts.values())))
    return FeatureProfile.fit_numeric(name, as_float(column, name), n_bins)


def _few_values(column: Column) -> bool:
    """At most ``MAX_CATEGORIES_UNIQUE`` distinct values; a prefix decides most columns, since hashing a
    million floats costs ~150 ms a column, three times the sort that the fit needs anyway."""
    prefix = column[:_PREFIX] if isinstance(column, np.ndarray) else column.iloc[:_PREFIX]
    if n_unique(prefix) > MAX_CATEGORIES_UNIQUE:
        return False
    return n_unique(column) <= MAX_CATEGORIES_UNIQUE


_PREFIX = 10_000


def _sample_column(column: Column, name: str, kind: str, rows: np.ndarray | None) -> np.ndarray:
    if rows is not None:
        column = take(column, rows)
    if kind == "numeric":
        return as_float(column, name)
    return np.array([None if _missing(v) else to_python(v) for v in as_objects(column)], dtype=object)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is np.nan


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """Fitted summary of a reference data set; compare windows with ``detectors.check.run_check``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> data = {"age": rng.normal(40, 10, 2000), "city": rng.choice(["a", "b", "c"], 2000)}
    >>> profile = ReferenceProfile.fit(data)
    >>> profile.n_rows, profile.feature_names, profile.features["city"].kind
    (2000, ['age', 'city'], 'categorical')
    >>> ReferenceProfile.from_json(profile.to_json()).features["age"].n
    2000
    """

    n_rows: int
    features: dict[str, FeatureProfile]
    predictions: dict[str, FeatureProfile] = field(default_factory=dict)
    # a bounded joint sample of rows (same row order in every column) for exact tests and the classifier
    sample: dict[str, np.ndarray] = field(default_factory=dict)
    sample_complete: bool = False
    target: str | None = None
    reference_performance: dict[str, float] = field(default_factory=dict)
    seed: int = 0

    @property
    def feature_names(self) -> list[str]:
        """Input feature names, in fit order."""
        return list(self.features)

    @classmethod
    def fit(
        cls,
        data: Data,
        *,
        categorical: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        prediction_columns: Sequence[str] | None = None,
        target: str | None = None,
        reference_performance: dict[str, float] | None = None,
        sample_size: int = 5000,
        n_bins: int = 1000,
        seed: int = 0,
    ) -> ReferenceProfile:
        """Fit a profile from a DataFrame or a mapping of equal-length arrays.

        Parameters
        ----------
        data : pandas.DataFrame or Mapping[str, numpy.ndarray]
            Reference rows; NaN / None are missing values.
        categorical : list of str, optional
            Columns to treat as categorical. By default a numeric column with more than 5 distinct values is
            numeric and everything else categorical; when given, every other column is numeric.
        columns : list of str, optional
            Input features to profile (default: all columns but ``prediction_columns`` and ``target``).
        prediction_columns : list of str, optional
            Model outputs, profiled separately for prediction drift.
        target : str, optional
            Label column; never profiled as a feature.
        reference_performance : dict, optional
            Metrics of the model on the reference (see ``detectors.performance``), stored as is.
        sample_size : int
            Rows kept as a joint sample; a reference with at most this many rows is kept whole, which
            makes the KS and Wasserstein tests exact.
        n_bins : int
            Quantile bins per numeric feature; binned statistics' error bounds shrink as ``1 / n_bins``.
        seed : int
            Seed of the row sample.
        """
        if sample_size < 1 or n_bins < 1:
            raise ValueError("sample_size and n_bins must be positive integers")
        names = column_names(data)
        outputs = list(prediction_columns or [])
        excluded = set(outputs) | ({target} if target else set())
        chosen = list(columns) if columns is not None else [c for c in names if c not in excluded]
        unknown = [c for c in [*chosen, *outputs, *(categorical or [])] if c not in names]
        if target is not None and target not in names:
            unknown.append(target)
        if unknown:
            raise ValueError(f"unknown columns {unknown}; valid: {', '.join(names)}")

        def kind_hint(col: str) -> bool | None:
            return None if categorical is None else col in categorical

        n_rows = row_count(data)
        complete = n_rows <= sample_size
        rows = (
            None
            if complete
            else np.sort(np.random.default_rng(seed).choice(n_rows, sample_size, replace=False))
        )

        def fit_one(name: str, column: Column) -> tuple[FeatureProfile, np.ndarray]:
            fp = fit_column(column, name, kind_hint(name), n_bins)
            return fp, _sample_column(column, name, fp.kind, rows)

        # one pass: a lazily read table (detectors.columns.LazyColumns) is read once, a column at a time
        names = list(dict.fromkeys([*chosen, *outputs]))
        done = dict(zip(names, per_column(data, names, fit_one), strict=True))
        fitted = {name: fp for name, (fp, _) in done.items()}
        sample = {name: values for name, (_, values) in done.items()}
        features = {c: fitted[c] for c in chosen}
        predictions = {c: fitted[c] for c in outputs}
        return cls(
            n_rows=n_rows,
            features=features,
            predictions=predictions,
            sample=sample,
            sample_complete=complete,
            target=target,
            reference_performance=dict(reference_performance or {}),
            seed=seed,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; NaN in the numeric sample becomes ``None``."""
        return {
            "format_version": FORMAT_VERSION,
            "n_rows": self.n_rows,
            "features": [fp.to_dict() for fp in self.features.values()],
            "predictions": [fp.to_dict() for fp in self.predictions.values()],
            "sample": {
                k: [None if _missing(v) else to_python(v) for v in col] for k, col in self.sample.items()
            },
            "sample_complete": self.sample_complete,
            "target": self.target,
            "reference_performance": self.reference_performance,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReferenceProfile:
        """Inverse of ``to_dict``."""
        if d.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported profile format_version {d.get('format_version')!r}; valid: 1")
        features = {f["name"]: FeatureProfile.from_dict(f) for f in d["features"]}
        predictions = {f["name"]: FeatureProfile.from_dict(f) for f in d.get("predictions", [])}
        kinds = {name: fp.kind for name, fp in {**features, **predictions}.items()}
        sample: dict[str, np.ndarray] = {}
        for name, col in d.get("sample", {}).items():
            if kinds.get(name) == "numeric":
                sample[name] = np.array([np.nan if v is None else v for v in col], dtype=np.float64)
            else:
                sample[name] = np.array(col, dtype=object)
        return cls(
            n_rows=int(d["n_rows"]),
            features=features,
            predictions=predictions,
            sample=sample,
            sample_complete=bool(d.get("sample_complete", False)),
            target=d.get("target"),
            reference_performance={k: float(v) for k, v in d.get("reference_performance", {}).items()},
            seed=int(d.get("seed", 0)),
        )

    def to_json(self) -> str:
        """Serialize to a JSON string."""
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        """Parse a string produced by ``to_json``."""
        return cls.from_dict(json.loads(text))
