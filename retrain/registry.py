"""The only module that talks to MLflow's model registry.

Versions are addressed by aliases (``champion``, ``challenger``, ``previous_champion``), never by the
deprecated stages. Aliases move only in :meth:`Registry.promote` and :meth:`Registry.rollback`, and both
set the new ``champion`` in one call, so a crash at any point leaves ``champion`` on a good version. Both
take the champion they expect (compare-and-set); MLflow's aliases have no compare-and-set of their own, so
callers serialize them per model (the service holds a database lease).
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import ColSpec

from retrain import _mlflow
from retrain._mlflow import guarded
from retrain.errors import ChampionChanged, MissingSignature, ModelNotFound, NoPreviousChampion

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"
REFERENCE_DIR = "reference"
REFERENCE_FILE = "reference.parquet"
#: Where the training data ("reference") lives in a version's run; bring-your-own-model users log it here.
REFERENCE_PATH = f"{REFERENCE_DIR}/{REFERENCE_FILE}"
#: Labeled rows a version was evaluated on, never trained on (bootstrap and retrain log them).
HOLDOUT_PATH = "holdout/holdout.parquet"
#: Version tag naming the run holding the reference when the version has no run of its own.
REFERENCE_RUN_TAG = "driftloop.reference_run_id"
#: ``expected_champion`` of :meth:`Registry.promote` / :meth:`Registry.rollback` that checks nothing
ANY_CHAMPION = "*"
_INPUT_EXAMPLE_ROWS = 5
_SIGNATURE_PREDICT_ROWS = 1000


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered model version, with its aliases resolved."""

    name: str
    version: str
    run_id: str | None
    source: str
    aliases: tuple[str, ...]
    tags: dict[str, str]
    created_at: datetime


@dataclass(frozen=True)
class ColumnSpec:
    """One input column of a model's signature.

    ``type`` is one of MLflow's scalar types: double, float, long, integer, boolean, string, datetime.
    """

    name: str
    type: str
    required: bool


def _info(mv: ModelVersion, aliases: Sequence[str]) -> ModelVersionInfo:
    return ModelVersionInfo(
        name=str(mv.name),
        version=str(mv.version),
        run_id=mv.run_id or None,
        source=str(mv.source or ""),
        aliases=tuple(sorted(aliases)),
        tags={str(k): str(v) for k, v in (mv.tags or {}).items()},
        created_at=datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, tz=UTC),
    )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


class Registry:
    """Log, register, alias, promote and load scikit-learn models in one MLflow store.

    Parameters
    ----------
    tracking_uri
        ``sqlite:///path/mlflow.db`` (embedded) or ``http://host:port`` (an ``mlflow server``).
    artifact_location
        Artifact root used when the experiment is created. Defaults to ``mlartifacts/`` next to an SQLite
        store; a server decides for itself.
    experiment
        Experiment holding driftloop's runs, created on first use.

    Nothing is contacted until a method is called, so constructing a Registry never fails.
    """

    def __init__(
        self, tracking_uri: str, *, artifact_location: str | None = None, experiment: str = "driftloop"
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        location = artifact_location or _mlflow.default_artifact_location(tracking_uri)
        self._artifact_location = _mlflow.as_artifact_uri(location) if location else None
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # ----- reading -------------------------------------------------------------------------------------

    @guarded
    def has_model(self, name: str) -> bool:
        """Whether a registered model called ``name`` exists (a name MLflow refuses, such as one with ':'
        or starting with '..', cannot be registered: False)."""
        try:
            self._client.get_registered_model(name)
        except Exception as exc:
            if _mlflow.is_not_found(exc) or getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE":
                return False
            raise
        return True

    @guarded
    def get_alias(self, name: str, alias: str) -> ModelVersionInfo | None:
        """The version carrying ``alias``, or None if the model or the alias does not exist."""
        aliases = self._aliases(name)
        if alias not in aliases:
            return None
        mv = self._client.get_model_version_by_alias(name, alias)
        return _info(mv, [a for a, v in aliases.items() if v == str(mv.version)])

    def champion(self, name: str) -> ModelVersionInfo | None:
        """The version serving production traffic, or None."""
        return self.get_alias(name, CHAMPION)

    @guarded
    def champion_version(self, name: str) -> str | None:
        """The champion's version number alone, from one registry call (serving polls it for every
        model every few seconds; `champion` takes two)."""
        return self._aliases(name).get(CHAMPION)

    @guarded
    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        """One version with its aliases; raises :class:`ModelNotFound` if it does not exist."""
        aliases = self._aliases(name)
        mv = self._client.get_model_version(name, version)
        return _info(mv, [a for a, v in aliases.items() if v == str(mv.version)])

    @guarded
    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """All versions of ``name`` with aliases and tags, newest first (empty if the model is unknown).

        ``search_model_versions`` leaves aliases empty (mlflow#9783), so they come from the registered
        model's alias map, the same data ``get_model_version_by_alias`` reads.
        """
        if not self.has_model(name):
            return []
        aliases = self._aliases(name)
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        versions: list[ModelVersion] = []
        token: str | None = None
        while True:
            page = self._client.search_model_versions(f"name = {_quote(name)}", page_token=token)
            versions.extend(page)
            token = page.token
            if not token:
                break
        versions.sort(key=lambda mv: int(mv.version), reverse=True)
        return [_info(mv, by_version.get(str(mv.version), [])) for mv in versions]

    @guarded
    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The metrics logged on a run (a version's training run), empty if the run is gone."""
        try:
            return {k: float(v) for k, v in self._client.get_run(run_id).data.metrics.items()}
        except Exception as exc:
            if _mlflow.is_not_found(exc):
                return {}
            raise

    @guarded
    def load_estimator(self, name: str, version: str) -> Any:
        """The raw scikit-learn estimator of a version (``predict_proba`` works, unlike pyfunc)."""
        self._client.get_model_version(name, version)  # a clear ModelNotFound before any download
        with _mlflow.fluent(self.tracking_uri):
            return mlflow.sklearn.load_model(f"models:/{name}/{version}")

    @guarded
    def input_schema(self, name: str, version: str) -> list[ColumnSpec]:
        """The input columns from the version's logged signature.

        Raises
        ------
        MissingSignature
            If the model was logged without a signature or with a tensor (non-column) signature.
        """
        self._client.get_model_version(name, version)
        with _mlflow.fluent(self.tracking_uri):
            signature = mlflow.models.get_model_info(f"models:/{name}/{version}").signature
        if signature is None or signature.inputs is None:
            raise MissingSignature(
                f"model {name} version {version} has no signature; log it with mlflow.sklearn.log_model"
                "(..., signature=infer_signature(X, model.predict(X))) (see docs/byom.md)"
            )
        columns = []
        for spec in signature.inputs.inputs:
            if not isinstance(spec, ColSpec) or spec.name is None:
                raise MissingSignature(
                    f"model {name} version {version} has a tensor or unnamed signature; driftloop needs "
                    "named columns: infer the signature from a pandas DataFrame"
                )
            dtype = getattr(spec.type, "name", str(spec.type))
            columns.append(ColumnSpec(name=spec.name, type=str(dtype), required=bool(spec.required)))
        return columns

    @guarded
    def load_reference(self, name: str, version: str) -> pd.DataFrame | None:
        """The version's training data at ``reference/reference.parquet``, or None if none was logged."""
        mv = self._client.get_model_version(name, version)
        run_id = (mv.tags or {}).get(REFERENCE_RUN_TAG) or mv.run_id
        return self._load_frame(run_id, REFERENCE_PATH) if run_id else None

    @guarded
    def load_holdout(self, name: str, version: str) -> pd.DataFrame | None:
        """The labeled rows the version was evaluated on but not trained on (``holdout/holdout.parquet``,
        logged by bootstrap and retrain), or None: what label-free estimators are calibrated on."""
        run_id = self._client.get_model_version(name, version).run_id
        return self._load_frame(run_id, HOLDOUT_PATH) if run_id else None

    def _load_frame(self, run_id: str, path: str) -> pd.DataFrame | None:
        listed = {f.path for f in self._client.list_artifacts(run_id, path.rsplit("/", 1)[0])}
        if path not in listed:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            local = self._client.download_artifacts(run_id, path, dst_path=tmp)
            return pd.read_parquet(local)

    # ----- writing -------------------------------------------------------------------------------------

    @guarded
    def log_reference(self, name: str, version: str, df: pd.DataFrame) -> None:
        """Attach (or replace) the reference data of an existing version.

        The file goes into the version's own run; a version registered without a run gets a small run of
        its own, recorded in the ``driftloop.reference_run_id`` version tag.
        """
        mv = self._client.get_model_version(name, version)
        run_id = (mv.tags or {}).get(REFERENCE_RUN_TAG) or mv.run_id
        if not run_id:
            run = self._client.create_run(self._experiment_id(), run_name=f"reference-{name}-v{version}")
            run_id = run.info.run_id
            self._client.set_terminated(run_id)
            self._client.set_model_version_tag(name, version, REFERENCE_RUN_TAG, run_id)
        self._log_frame(run_id, REFERENCE_PATH, df)
        # lets a service that caches reference profiles per version notice the replacement
        self._client.set_model_version_tag(
            name, version, "driftloop.reference_updated_at", datetime.now(UTC).isoformat()
        )

    @guarded
    def log_and_register(
        self,
        name: str,
        estimator: Any,
        train_df: pd.DataFrame,
        *,
        features: Sequence[str],
        target: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        run_name: str | None = None,
        extra_artifacts: Mapping[str, pd.DataFrame] | None = None,
    ) -> ModelVersionInfo:
        """Log a fitted estimator in one run and register it as a new version of ``name``.

        The run holds ``params``, ``metrics``, the model with a signature (inferred from
        ``train_df[features]`` and the estimator's predictions) and an input example, and the whole
        ``train_df`` at ``reference/reference.parquet``. ``extra_artifacts`` maps run-relative paths
        (``"holdout/holdout.parquet"``) to frames. ``tags`` go on both the run and the version.
        No alias is moved.
        """
        missing = [c for c in (*features, target) if c not in train_df.columns]
        if missing:
            raise ValueError(f"train_df lacks columns {missing}; it has {list(train_df.columns)}")
        X = train_df[list(features)]
        with warnings.catch_warnings():
            # MLflow's hint about integer columns and missing values is advice for notebooks; in a retrain
            # loop it repeats on every run, and the service rejects missing required values anyway
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
            signature = infer_signature(X, estimator.predict(X.head(_SIGNATURE_PREDICT_ROWS)))
        fmt, trusted = _mlflow.serialization_for(estimator)
        version_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        with _mlflow.fluent(self.tracking_uri):
            experiment_id = self._experiment_id()
            with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
                run_id = run.info.run_id
                if params:
                    mlflow.log_params({str(k): v for k, v in params.items()})
                if metrics:
                    mlflow.log_metrics({str(k): float(v) for k, v in metrics.items()})
                mlflow.set_tags({**version_tags, "driftloop.target": target})
                logged = mlflow.sklearn.log_model(
                    estimator,
                    name="model",
                    signature=signature,
                    input_example=X.head(_INPUT_EXAMPLE_ROWS),
                    serialization_format=fmt,
                    skops_trusted_types=trusted,
                    # explicit requirements skip MLflow's inference, which reloads the model in a subprocess
                    pip_requirements=mlflow.sklearn.get_default_pip_requirements(
                        include_cloudpickle=fmt == "cloudpickle", include_skops=fmt == "skops"
                    ),
                )
                self._log_frame(run_id, REFERENCE_PATH, train_df)
                for path, frame in (extra_artifacts or {}).items():
                    self._log_frame(run_id, path, frame)
            mv = mlflow.register_model(logged.model_uri, name, tags=version_tags)
        return self.get_version(name, str(mv.version))

    @guarded
    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
        self._client.set_registered_model_alias(name, alias, version)

    @guarded
    def tag_version(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        """Set (or overwrite) tags on one version."""
        for key, value in tags.items():
            self._client.set_model_version_tag(name, version, key, str(value))

    @guarded
    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` (no error if it is not set)."""
        if alias in self._aliases(name):
            self._client.delete_registered_model_alias(name, alias)

    def promote(
        self, name: str, version: str, *, expected_champion: str | None = ANY_CHAMPION
    ) -> ModelVersionInfo:
        """Make ``version`` the champion, keeping the current champion as ``previous_champion``.

        ``expected_champion`` is the version the caller evaluated against (None: no champion yet); when the
        champion is another one, :class:`~retrain.errors.ChampionChanged` is raised and nothing moves.
        Order: read and compare the champion, point ``previous_champion`` at it, then move ``champion``,
        the one call that decides. A crash between the two leaves ``champion`` on the old, good version
        (``previous_champion`` then names it too: the caller's recorded intent knows the pointer before).
        Promoting the current champion again changes nothing.
        """
        target = self.get_version(name, version)
        current = self.champion(name)
        if current is not None and current.version == target.version:
            return current
        self._check_expected(name, current, expected_champion, "promote")
        if current is not None:
            self.set_alias(name, PREVIOUS_CHAMPION, current.version)
        self.set_alias(name, CHAMPION, target.version)
        return self.get_version(name, target.version)

    def rollback(self, name: str, *, expected_champion: str | None = ANY_CHAMPION) -> ModelVersionInfo:
        """Move ``champion`` back to ``previous_champion`` and return the restored champion.

        The two aliases swap, so ``previous_champion`` then names the version just rolled back from (a
        second rollback undoes the first). ``champion`` moves first and is never left unset. With
        ``expected_champion``, the rollback is refused (:class:`~retrain.errors.ChampionChanged`) when
        the champion is not that version.

        Raises
        ------
        NoPreviousChampion
            If no version carries ``previous_champion``, or it is the champion itself.
        """
        previous = self.get_alias(name, PREVIOUS_CHAMPION)
        if previous is None:
            raise NoPreviousChampion(f"model {name!r} has no previous_champion to roll back to")
        current = self.champion(name)
        self._check_expected(name, current, expected_champion, "roll back")
        if current is not None and current.version == previous.version:
            raise NoPreviousChampion(
                f"model {name!r}: previous_champion is the champion itself (version {previous.version}); "
                "there is nothing to roll back to"
            )
        self.set_alias(name, CHAMPION, previous.version)
        if current is not None:
            self.set_alias(name, PREVIOUS_CHAMPION, current.version)
        return self.get_version(name, previous.version)

    @staticmethod
    def _check_expected(
        name: str, current: ModelVersionInfo | None, expected: str | None, action: str
    ) -> None:
        found = current.version if current is not None else None
        if expected != ANY_CHAMPION and found != expected:
            raise ChampionChanged(
                f"refused to {action} {name!r}: the champion is version {found or 'none'}, "
                f"not the expected version {expected or 'none'}",
                expected=expected,
                found=found,
            )

    # ----- internals -----------------------------------------------------------------------------------

    def _aliases(self, name: str) -> dict[str, str]:
        try:
            model = self._client.get_registered_model(name)
        except Exception as exc:
            if _mlflow.is_not_found(exc):
                return {}
            raise
        return {str(a): str(v) for a, v in (model.aliases or {}).items()}

    def _experiment_id(self) -> str:
        experiment = self._client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(self._client.create_experiment(self.experiment, self._artifact_location))
        except Exception:
            # another process created it between our read and our write
            experiment = self._client.get_experiment_by_name(self.experiment)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def _log_frame(self, run_id: str, path: str, df: pd.DataFrame) -> None:
        directory, _, filename = path.rpartition("/")
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / filename
            df.to_parquet(local, index=False)
            self._client.log_artifact(run_id, str(local), directory or None)


__all__ = [
    "ANY_CHAMPION",
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS_CHAMPION",
    "REFERENCE_PATH",
    "ColumnSpec",
    "ModelNotFound",
    "ModelVersionInfo",
    "Registry",
]
