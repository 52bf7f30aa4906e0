"""`driftloop check REFERENCE CURRENT`: compare two CSV/Parquet files from the command line."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from detectors.check import CheckOptions, DatasetDriftResult, run_check
from detectors.columns import Data, column_names, get_column, is_frame
from detectors.correction import CORRECTIONS
from detectors.profile import ReferenceProfile
from detectors.select import METHODS
from service.cli.tables import READERS, CheckError


def _read(path: Path) -> Data:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise CheckError(f"{path}: unsupported file type {path.suffix!r}; valid: .csv, .parquet, .pq")
    try:
        frame = reader(path)
    except Exception as exc:  # any reader failure is the user's file, not our bug
        raise CheckError(f"cannot read {path}: {exc}") from exc
    if not (is_frame(frame) or isinstance(frame, Mapping)):
        raise CheckError(f"{path} did not parse as a table")
    return frame


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _pairs(values: list[str] | None, option: str) -> list[tuple[str | None, str]]:
    """`name=value` items (comma-separated or repeated); a bare `value` applies to every feature."""
    out: list[tuple[str | None, str]] = []
    for item in _split(values):
        key, sep, value = item.partition("=")
        out.append((key.strip(), value.strip()) if sep else (None, key.strip()))
        if sep and not (key.strip() and value.strip()):
            raise CheckError(f"{option} {item!r}: expected NAME=VALUE")
    return out


def _options(
    columns: list[str],
    method: list[str] | None,
    threshold: list[str] | None,
    **kwargs: Any,
) -> CheckOptions:
    methods: dict[str, str] = {}
    for key, value in _pairs(method, "--method"):
        if value not in METHODS:
            raise CheckError(f"--method {value!r}: unknown method; valid: {', '.join(METHODS)}")
        for name in [key] if key else columns:
            methods[name] = value
    thresholds: dict[str, float] = {}
    for key, value in _pairs(threshold, "--threshold"):
        if key is None:
            raise CheckError(f"--threshold {value!r}: expected METHOD=VALUE or COLUMN=VALUE")
        if key not in METHODS and key not in columns:
            raise CheckError(
                f"--threshold {key}: not a method or a checked column; methods: {', '.join(METHODS)}; "
                f"columns: {', '.join(columns)}"
            )
        try:
            thresholds[key] = float(value)
        except ValueError as exc:
            raise CheckError(f"--threshold {key}={value}: not a number") from exc
    unknown = [k for k in methods if k not in columns]
    if unknown:
        raise CheckError(f"--method for unknown column(s) {unknown}; columns: {', '.join(columns)}")
    try:
        return CheckOptions(methods=methods, thresholds=thresholds, **kwargs)
    except ValueError as exc:
        raise CheckError(str(exc)) from exc


def _reference_performance(frame: Data, target: str, prediction: str, categorical: bool) -> dict[str, float]:
    # imported on use: scikit-learn's metrics cost ~0.5 s, which a check without --target never pays
    import pandas as pd

    from detectors.performance import classification_metrics, regression_metrics

    pair = {target: get_column(frame, target), prediction: get_column(frame, prediction)}
    rows = pd.DataFrame(pair).dropna()
    if rows.empty:
        return {}
    if categorical:
        return classification_metrics(rows[target].to_numpy(), rows[prediction].to_numpy())
    return regression_metrics(rows[target].to_numpy(), rows[prediction].to_numpy())


def _table(result: DatasetDriftResult) -> str:
    head = (
        f"{'feature':<24} {'kind':<11} {'method':<13} {'statistic':>10} {'p_val':>9} {'threshold':>9}"
        f" {'missing':>13}  status"
    )
    lines = [head, "-" * len(head)]
    for f in (*result.features, *result.predictions):
        p = "" if f.p_val is None else f"{f.p_val:.3g}"
        stat = "" if f.statistic != f.statistic else f"{f.statistic:.4g}"
        notes = f" [{', '.join(f.quality_issues)}]" if f.quality_issues else ""
        name = f.name if f.role == "feature" else f"{f.name} (prediction)"
        missing = f"{f.missing_rate_ref:.1%}>{f.missing_rate_cur:.1%}"
        lines.append(
            f"{name:<24} {f.kind:<11} {f.method:<13} {stat:>10} {p:>9} {f.threshold:>9.4g} {missing:>13}"
            f"  {f.status}{notes}"
        )
        if f.reason:
            lines.append(f"{'':<24} ^ {f.reason}")
    mv = result.multivariate
    if mv is not None:
        lines.append(
            f"multivariate: domain classifier AUC {mv.auc:.3f} (threshold {mv.threshold}, p={mv.p_val:.3g})"
            f" -> {mv.status}"
        )
    if result.performance is not None:
        perf = result.performance
        lines.append(
            f"performance: {perf.metric} {perf.value:.4g} vs reference {perf.reference:.4g} -> {perf.status}"
        )
    if result.data_quality:
        lines.append(
            f"data quality: missing values surged in {', '.join(result.data_quality_features)}"
            " (counted as changed features in the share)"
        )
    n_drift = len(result.drifted_features)
    n_features = len(result.features)
    lines.append(
        f"dataset: {result.status} ({n_drift} of {n_features} features drifted,"
        f" share {result.drift_share:.2f} vs {result.drift_share_threshold};"
        f" reference {result.n_reference} rows, current {result.n_current})"
    )
    return "\n".join(lines)


def check(
    reference: Annotated[Path, typer.Argument(help="Reference data (.csv or .parquet).")],
    current: Annotated[Path, typer.Argument(help="Current data (.csv or .parquet).")],
    columns: Annotated[
        list[str] | None,
        typer.Option("--columns", "-c", help="Features to check (comma-separated or repeated)."),
    ] = None,
    categorical: Annotated[
        list[str] | None, typer.Option("--categorical", help="Columns to treat as categorical.")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="Label column (for performance).")] = None,
    prediction: Annotated[
        list[str] | None, typer.Option("--prediction", help="Model output column(s), checked for drift.")
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method", "-m", help=f"COLUMN=METHOD or METHOD for all; methods: {', '.join(METHODS)}."
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None, typer.Option("--threshold", "-t", help="METHOD=VALUE or COLUMN=VALUE.")
    ] = None,
    correction: Annotated[str, typer.Option(help=f"One of {', '.join(CORRECTIONS)}.")] = "none",
    drift_share: Annotated[float, typer.Option(help="Share of drifted features for dataset drift.")] = 0.5,
    min_rows: Annotated[int, typer.Option(help="Smaller windows are insufficient_data.")] = 100,
    multivariate: Annotated[bool, typer.Option(help="Run the domain classifier.")] = True,
    seed: Annotated[int, typer.Option(help="Seed for sampling.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 1 when drift is found.")
    ] = False,
) -> None:
    """Compare CURRENT with REFERENCE: per-feature drift, dataset drift and a domain classifier."""
    try:
        result = _run(
            reference,
            current,
            columns=_split(columns),
            categorical=_split(categorical) if categorical else None,
            target=target,
            prediction=_split(prediction),
            method=method,
            threshold=threshold,
            correction=correction,
            drift_share=drift_share,
            min_rows=min_rows,
            multivariate=multivariate,
            seed=seed,
        )
    except CheckError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else _table(result))
    if fail_on_drift and result.dataset_drift:
        raise typer.Exit(1)


def _run(
    reference: Path,
    current: Path,
    *,
    columns: list[str],
    categorical: list[str] | None,
    target: str | None,
    prediction: list[str],
    method: list[str] | None,
    threshold: list[str] | None,
    **kwargs: Any,
) -> DatasetDriftResult:
    ref, cur = _read(reference), _read(current)
    ref_cols = column_names(ref)
    named = [*columns, *prediction, *([target] if target else []), *(categorical or [])]
    unknown = [c for c in named if c not in ref_cols]
    if unknown:
        raise CheckError(f"unknown column(s) {unknown} in {reference}; columns: {', '.join(ref_cols)}")
    excluded = set(prediction) | ({target} if target else set())
    features = columns or [c for c in ref_cols if c not in excluded]
    cur_cols = set(column_names(cur))
    missing = [c for c in [*features, *prediction] if c not in cur_cols]
    if missing:
        raise CheckError(f"schemas differ: {current} lacks column(s) {missing} of {reference}")
    options = _options([*features, *prediction], method, threshold, **kwargs)
    try:
        profile = ReferenceProfile.fit(
            ref, columns=features, prediction_columns=prediction, target=target, categorical=categorical
        )
        if target and prediction:
            kind = profile.predictions[prediction[0]].kind
            perf = _reference_performance(ref, target, prediction[0], kind == "categorical")
            profile = dataclasses.replace(profile, reference_performance=perf)
        return run_check(profile, cur, options=options)
    except ValueError as exc:  # mismatched types, bad methods for a kind, ...
        raise CheckError(f"schemas or options do not fit: {exc}") from exc
