"""All settings, read from `DRIFTLOOP_*` environment variables (and `.env`)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, PrivateAttr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIFTLOOP_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"), description="Folder of the embedded SQLite files and artifacts."
    )
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in data_dir.")
    mlflow_tracking_uri: str = Field(
        default="",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "DRIFTLOOP_MLFLOW_TRACKING_URI"),
        description="MLflow tracking server; empty means sqlite:///<data_dir>/mlflow.db.",
    )
    model_name: str = Field(
        default="driftloop-demo", description="Registered model to serve: the default model of /v1/predict."
    )
    models: str = Field(
        default="", description="More registered models to serve and watch, comma-separated (docs/models.md)."
    )
    models_file: str = Field(
        default="", description="TOML file of per-model settings, [models.<name>] tables (docs/models.md)."
    )
    model_poll_seconds: float = Field(
        default=10.0, gt=0, description="How often serving re-resolves @champion."
    )

    # serving
    max_batch_rows: int = Field(default=1000, ge=1, description="Largest accepted batch in one request.")
    max_body_bytes: int = Field(default=5_000_000, ge=1024, description="Largest accepted request body.")
    max_abs_feature: float = Field(
        default=1e15,
        gt=0,
        le=1e300,
        description="Largest |value| of a numeric feature; beyond it a request is a 422 (docs/limits.md).",
    )
    batch_wait_ms: float = Field(
        default=2.0, ge=0, description="How long the micro-batcher waits for company."
    )
    batch_max_rows: int = Field(default=256, ge=1, description="Rows per model call in the micro-batcher.")
    log_flush_ms: float = Field(default=2.0, ge=0, description="Group-commit wait of the prediction writer.")
    log_max_rows: int = Field(default=2000, ge=1, description="Rows per group commit.")

    # monitoring
    drift_check_interval: float = Field(default=60.0, gt=0, description="Seconds between scheduled checks.")
    window_kind: Literal["rows", "time"] = Field(
        default="rows", description="Window by row count or time span."
    )
    window_rows: int = Field(default=1000, ge=1, description="Rows per window (window_kind=rows).")
    window_seconds: float = Field(default=3600.0, gt=0, description="Window span (window_kind=time).")
    min_window_rows: int = Field(default=200, ge=1, description="Below this a run is insufficient_data.")
    performance_window_rows: int = Field(
        default=500, ge=1, description="Labeled rows per performance window (window_kind=rows)."
    )
    window_checks_per_tick: int = Field(
        default=20, ge=1, description="Most windows one scheduled check computes; the rest wait a tick."
    )
    window_backlog: Literal["all", "latest"] = Field(
        default="all",
        description="Windows behind the checks: `all` checks each, oldest first; `latest` checks the "
        "newest `breach_m` and records the skipped ones in the run.",
    )
    drift_correction: Literal["none", "bonferroni", "fdr"] = Field(
        default="bonferroni", description="Correction."
    )
    drift_share: float = Field(
        default=0.5, gt=0, le=1, description="Share of drifted features = dataset drift."
    )
    breach_k: int = Field(
        default=2, ge=1, description="Breaching checks among the last M that open an episode."
    )
    breach_m: int = Field(default=3, ge=1, description="Checks considered for opening/closing an episode.")
    performance_metric: str = Field(
        default="",
        description="Metric watched for degradation and gated on in retrains; empty = by the model's task "
        "(accuracy for a classifier, rmse for a regressor).",
    )
    performance_tolerance: float = Field(
        default=0.05, ge=0, description="Allowed drop before a breach, for metrics without an evidence test."
    )
    performance_alpha: float = Field(
        default=0.01, gt=0, lt=1, description="Alpha of the one-sided test of a window against the baseline."
    )
    performance_min_effect: float | None = Field(
        default=None,
        ge=0,
        description="Smallest loss that breaches; empty = by metric (0.02 absolute for accuracy / roc_auc, "
        "10% relative for rmse / mae / log_loss).",
    )
    target_column: str = Field(
        default="",
        description="Target (label) column of reference data; empty = the first of target, label, y, "
        "class, outcome.",
    )
    estimated_performance: bool = Field(
        default=True,
        description="Estimate performance without labels (CBPE / DLE) on every drift window "
        "(docs/estimation.md).",
    )
    estimated_min_effect: float = Field(
        default=0.02,
        ge=0,
        description="Smallest estimated loss that breaches (absolute; relative for rmse / mae).",
    )
    estimated_alpha: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Alpha of the one-sided test of an estimate against its baseline.",
    )
    embedded_scheduler: bool = Field(default=True, description="Run the scheduler inside `driftloop serve`.")
    lease_seconds: float = Field(default=60.0, gt=0, description="Lifetime of a scheduler job lease.")

    # alerts
    public_url: str = Field(default="http://127.0.0.1:8000", description="Base of links in alerts.")
    host: str = Field(default="127.0.0.1", description="Interface `driftloop serve` binds (its --host).")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `driftloop serve` binds (its --port).")
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, description="Per-attempt delivery timeout.")
    webhook_max_attempts: int = Field(default=6, ge=1, description="Attempts before a delivery is dead.")
    webhook_backoff_seconds: float = Field(default=2.0, gt=0, description="First retry delay (doubles).")
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0, description="Longest retry delay.")
    webhook_concurrency: int = Field(default=50, ge=1, description="Deliveries in flight per dispatcher.")
    webhook_dispatch_interval: float = Field(default=1.0, gt=0, description="Seconds between outbox scans.")
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list, description="If set, only these hosts may be webhook targets."
    )
    webhook_allow_private: bool = Field(
        default=True,
        description="Allow loopback/private targets (link-local and metadata are always refused).",
    )

    # retraining
    retrain_on_episode: bool = Field(default=True, description="An opening episode triggers a retrain.")
    retrain_on_estimated: bool = Field(
        default=False,
        description="An estimated-performance episode may trigger a retrain, once `retrain_min_rows` labels "
        "of the traffic since its breach exist.",
    )
    retrain_cooldown_seconds: float = Field(default=600.0, ge=0, description="Minimum gap between retrains.")
    retrain_daily_budget: int = Field(default=6, ge=0, description="Automatic retrains per day.")
    retrain_data_policy: Literal["recent", "reference_plus_recent"] = Field(
        default="recent", description="What the challenger trains on."
    )
    retrain_window_rows: int = Field(default=5000, ge=10, description="Most recent labeled rows used.")
    retrain_holdout_fraction: float = Field(
        default=0.3, gt=0, lt=1, description="Most recent share held out."
    )
    retrain_min_rows: int = Field(
        default=200,
        ge=10,
        description="Labeled rows to retrain on (a drift episode waits for as many of its own).",
    )
    retrain_margin: float = Field(default=0.0, ge=0, description="Challenger must beat champion by this.")
    retrain_poll_seconds: float = Field(default=2.0, gt=0, description="How often the worker looks for jobs.")
    retrain_stale_minutes: float = Field(
        default=5.0,
        gt=0,
        description="A job whose worker's heartbeat (renewed every fifth of this, at most 30 s) is older is "
        "reconciled with MLflow: its worker died.",
    )
    retrain_recipe: str = Field(default="", description="'module:function' returning an estimator.")
    automation_hold_seconds: float = Field(
        default=0.0,
        ge=0,
        description="After a manual rollback the loop stays paused this long (0: until resumed, "
        "POST /v1/automation).",
    )
    automation_paused: bool = Field(
        default=False,
        description="Configured pause: no automatic retrain (on episodes or estimates); true here pauses "
        "every model, automation_paused in a model's table of DRIFTLOOP_MODELS_FILE that model (over this). "
        "GET /v1/models/{name}/automation reads paused naming where it is set; a resume there is a 409 "
        "(set it false and restart). Manual retrains still run (docs/models.md).",
    )

    # lifecycle of the prediction log (service/lifecycle/)
    retention_days: int = Field(
        default=30, ge=0, description="Days unlabeled predictions are kept (0: forever); see docs/scaling.md."
    )
    labeled_retention_days: int = Field(
        default=180, ge=0, description="Days labeled predictions and their feedback are kept (0: forever)."
    )
    retention_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often the rollup + retention job runs."
    )
    retention_batch_rows: int = Field(
        default=2000, ge=1, le=50_000, description="Rows deleted per (short) transaction."
    )
    retention_pause_ms: float = Field(
        default=20.0, ge=0, description="Pause between deletion batches (leaves the writer room)."
    )
    retention_rest_ratio: float = Field(
        default=19.0,
        ge=0,
        description="After each retention step (a delete batch, a day partition's count, copy or swap) "
        "a pause this many times the step's own time (at least the pause above): retention uses at "
        "most 1 / (1 + ratio) of a core, so serving keeps the machine (docs/scaling.md).",
    )
    retention_max_seconds: float = Field(
        default=300.0, gt=0, description="Longest retention run; the next run continues."
    )
    rollup_max_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest rollup scan per retention run (short reads; the next run continues, and "
        "retention deletes nothing until the rollups are caught up).",
    )
    export_url: str = Field(
        default="",
        description="Folder or fsspec URL (file:///data/lake, s3://bucket/prefix) the scheduler exports "
        "each complete UTC day to, as URL/MODEL/date=YYYY-MM-DD/predictions.parquet; empty: off. "
        "While set, retention keeps the rows not yet exported.",
    )
    export_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often the scheduled export looks for days to export."
    )
    export_delay_minutes: float = Field(
        default=60.0, ge=0, description="A day is exported this long after it ends (late labels)."
    )
    export_max_seconds: float = Field(
        default=900.0, gt=0, description="Longest scheduled export run; the next run continues."
    )

    # access
    admin_token: str = Field(default="", description="Bearer token of admin endpoints.")
    admin_open: bool = Field(default=False, description="Open admin endpoints without a token (local use).")
    predict_token: str = Field(default="", description="Optional bearer token of predict/feedback.")

    # the keys a model's [models.<name>] table set (not a setting): a configured pause names its source
    _from_models_file: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    def for_model(self, name: str, overrides: Mapping[str, Any]) -> Settings:
        """These settings with a model's models-file `overrides` (already checked) and `model_name`."""
        found = self.model_copy(update={**overrides, "model_name": name})
        found._from_models_file = frozenset(overrides)
        return found

    @property
    def from_models_file(self) -> frozenset[str]:
        """The keys the model's entry in DRIFTLOOP_MODELS_FILE set (empty: none, or no entry)."""
        return self._from_models_file

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'driftloop.db').as_posix()}"

    @property
    def resolved_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{(self.data_dir / 'mlflow.db').as_posix()}"

    @property
    def artifact_root(self) -> Path:
        return self.data_dir / "mlartifacts"


@lru_cache
def get_settings() -> Settings:
    return Settings()
