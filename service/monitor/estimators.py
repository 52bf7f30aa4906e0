"""A version's label-free estimators: CBPE (classifiers) or DLE (numeric regressors) and the permutation
importance behind drift root cause, fitted once on a labeled holdout and stored (`reference_estimators`).

The holdout is, in order: the rows the version was evaluated on and not trained on (the registry's
`holdout/holdout.parquet`, logged by bootstrap and retrain), else a seeded part of the stored reference
sample when it has the target (training rows: the model looks more confident on them than on new data,
so the estimate leans optimistic; the stored document says which). Fitting happens at the first check that
misses it and again when the reference is replaced. A version without a model or a holdout stores a
document that says why, so the model is not reloaded at every check; an unreachable registry stores
nothing and the next check tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, select

from detectors.cbpe import CBPE
from detectors.dle import DLE
from detectors.importance import ModelImportance, fit_importance
from retrain.errors import InvalidSetting, ModelNotFound
from retrain.task import infer_task
from service.codec import dumps, loads
from service.db.tables import ReferenceEstimator, utcnow
from service.monitor.references import StoredReference, get_reference

log = logging.getLogger("driftloop.estimators")

FORMAT_VERSION = 1
MIN_HOLDOUT_ROWS = 100
SAMPLE_HOLDOUT_SHARE = 0.4  # of the reference sample, when the registry has no holdout
IMPORTANCE_ROWS = 2000


class EstimatorSource(Protocol):
    """What the registry offers for fitting (service/monitor/sources.py RegistryReferences)."""

    def load_estimator(self, name: str, version: str) -> Any: ...
    def load_holdout(self, name: str, version: str) -> pd.DataFrame | None: ...


@dataclass(frozen=True)
class VersionEstimators:
    """The parsed document; `cbpe` / `dle` / `importance` None with the reason in `notes`."""

    task: str | None
    features: tuple[str, ...]
    cbpe: CBPE | None
    dle: DLE | None
    importance: ModelImportance | None
    holdout_source: str
    n_holdout: int
    notes: tuple[str, ...]

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> VersionEstimators:
        return cls(
            doc.get("task"),
            tuple(doc.get("features") or ()),
            CBPE.from_dict(doc["cbpe"]) if doc.get("cbpe") else None,
            DLE.from_dict(doc["dle"]) if doc.get("dle") else None,
            ModelImportance.from_dict(doc["importance"]) if doc.get("importance") else None,
            str(doc.get("holdout_source", "")),
            int(doc.get("n_holdout", 0)),
            tuple(doc.get("notes") or ()),
        )


def holdout_for(
    ref: StoredReference, source: EstimatorSource, target: str | None
) -> tuple[pd.DataFrame, str]:
    """The labeled rows to fit on and where they came from (empty frame: none)."""
    found = source.load_holdout(ref.model_name, ref.model_version)
    if found is not None and target is not None and target in found.columns:
        return found.loc[found[target].notna()], "registry:holdout/holdout.parquet"
    sample = ref.sample
    if target is not None and target in sample.columns:
        labeled = sample.loc[sample[target].notna()]
        part = labeled.sample(frac=SAMPLE_HOLDOUT_SHARE, random_state=0) if len(labeled) else labeled
        return part, "reference_sample (training rows: the estimate may lean optimistic)"
    return pd.DataFrame(), "none"


def fit_document(
    model: Any, holdout: pd.DataFrame, *, features: list[str], target: str, kinds: dict[str, str], source: str
) -> dict[str, Any]:
    """Fit CBPE (a classifier with probabilities) or DLE (a regressor with numeric inputs) and the
    permutation importance on `holdout`; what could not be fitted is said in `notes`."""
    notes: list[str] = []
    doc: dict[str, Any] = {
        "version": FORMAT_VERSION, "features": features, "holdout_source": source, "n_holdout": len(holdout),
        "cbpe": None, "dle": None, "importance": None, "task": None,
    }  # fmt: skip
    try:
        doc["task"] = infer_task(model).task
    except InvalidSetting as exc:
        doc["notes"] = [f"task unknown: {exc}"]
        return doc
    if len(holdout) < MIN_HOLDOUT_ROWS:
        doc["notes"] = [f"{len(holdout)} labeled holdout rows ({source}); at least {MIN_HOLDOUT_ROWS} needed"]
        return doc
    X, y = holdout[features], holdout[target].to_numpy()
    pred = np.asarray(model.predict(X))
    if doc["task"] == "classification":
        if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
            classes = list(model.classes_)
            proba = np.asarray(model.predict_proba(X), dtype=np.float64)
            try:
                est = CBPE.fit(y, proba[:, 1] if len(classes) == 2 else proba, pred, classes=classes, seed=0)
                doc["cbpe"] = est.to_dict()
            except ValueError as exc:
                notes.append(f"CBPE not fitted: {exc}")
        else:
            notes.append("CBPE skipped: the classifier gives no probabilities (predict_proba)")
    else:
        other = [f for f in features if kinds.get(f) != "numeric"]
        if other:
            notes.append(f"DLE skipped: it needs numeric inputs; non-numeric features: {', '.join(other)}")
        else:
            try:
                doc["dle"] = DLE.fit(
                    X.to_numpy(dtype=np.float64), y.astype(np.float64), pred, seed=0
                ).to_dict()
            except ValueError as exc:
                notes.append(f"DLE not fitted: {exc}")
    try:
        doc["importance"] = fit_importance(
            model, X, y, max_rows=IMPORTANCE_ROWS, n_repeats=5, seed=0
        ).to_dict()
    except (ValueError, TypeError) as exc:
        notes.append(f"permutation importance not fitted: {exc}")
    doc["notes"] = notes
    return doc


def estimators_for(
    engine: sa.Engine, ref: StoredReference, source: object | None
) -> VersionEstimators | None:
    """The version's stored estimators, fitted now when missing or older than its reference; None when
    there is nothing to fit with (no registry) or the registry failed (retried at the next check)."""
    name, version = ref.model_name, ref.model_version
    with Session(engine, expire_on_commit=False) as session:
        ref_row = get_reference(session, model_name=name, model_version=version)
        row = _row(session, name, version)
    ref_at = ref_row.created_at if ref_row is not None else utcnow()
    if row is not None and row.reference_created_at >= ref_at:
        return VersionEstimators.from_document(loads(row.document))
    if source is None or not hasattr(source, "load_estimator") or not hasattr(source, "load_holdout"):
        return None
    target = ref.target or ("target" if "target" in ref.sample.columns else None)
    try:
        model = source.load_estimator(name, version)
        holdout, where = holdout_for(ref, source, target)
    except ModelNotFound as exc:
        doc: dict[str, Any] = {"version": FORMAT_VERSION, "notes": [f"model not found: {exc}"]}
        holdout, where = pd.DataFrame(), "none"
    except Exception as exc:  # the registry being down must not stop monitoring: try at the next check
        log.warning("estimators of %s v%s not fitted now: %s", name, version, exc)
        return None
    else:
        features = list(ref.profile.features)
        kinds = {f: p.kind for f, p in ref.profile.features.items()}
        if target is None:
            doc = {"version": FORMAT_VERSION, "features": features, "notes": ["no target column known"]}
        else:
            doc = fit_document(model, holdout, features=features, target=target, kinds=kinds, source=where)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        save_document(session, name, version, ref_at, where, len(holdout), doc)
    log.info("estimators of %s v%s fitted on %d rows (%s): %s", name, version, len(holdout), where,
             "; ".join(doc.get("notes") or ["ok"]))  # fmt: skip
    return VersionEstimators.from_document(doc)


def _row(session: Session, name: str, version: str) -> ReferenceEstimator | None:
    stmt = select(ReferenceEstimator).where(
        ReferenceEstimator.model_name == name, ReferenceEstimator.model_version == version
    )
    return session.exec(stmt).first()


def save_document(
    session: Session, name: str, version: str, ref_at: datetime, source: str, n: int, doc: dict[str, Any]
) -> ReferenceEstimator:
    """Insert or replace the version's document (two checks fitting at once: the first insert wins)."""
    row = _row(session, name, version)
    if row is None:
        row = ReferenceEstimator(
            model_name=name, model_version=version, reference_created_at=ref_at, holdout_source=source[:200],
            n_holdout=n, document=dumps(doc), created_at=utcnow(),
        )  # fmt: skip
    else:
        row.reference_created_at, row.holdout_source, row.n_holdout = ref_at, source[:200], n
        row.document, row.created_at = dumps(doc), utcnow()
    try:
        with session.begin_nested():
            session.add(row)
    except sa.exc.IntegrityError:
        existing = _row(session, name, version)
        assert existing is not None
        return existing
    return row
