"""Database tables. Hot rows (predictions, feedback) are append-only."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.db.commit_order import next_feedback_seq
from service.db.jsonb import JSONText


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _ts(*, index: bool = False, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(UTCDateTime(), index=index, nullable=nullable)


class Prediction(SQLModel, table=True):
    # PostgreSQL: partitioned by UTC day on created_at (service/lifecycle/partitions.py), so the primary
    # key and any unique key include created_at, and `seq` has a plain index
    __tablename__ = "predictions"
    __table_args__ = (
        sa.Index("ix_predictions_model_time", "model_name", "model_version", "created_at"),
        sa.Index("ix_predictions_model_seq", "model_name", "model_version", "seq"),
        sa.Index("ix_predictions_seq", "seq"),
    )

    id: str = Field(primary_key=True, max_length=36)
    # commit order: every reader sees a prefix of it, so row windows are ranges of it
    # (service/serving/store.py assigns it; PostgreSQL: a sequence, the partitioned table has no identity)
    seq: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, sa.Sequence("predictions_seq_seq"), nullable=False),
    )
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), primary_key=True, nullable=False))
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=50)
    features: str = Field(sa_column=sa.Column(JSONText(), nullable=False))  # jsonb on PostgreSQL
    output: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    probabilities: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    latency_ms: float = 0.0
    endpoint: str = Field(default="predict", max_length=20)


class Feedback(SQLModel, table=True):
    """A label. No foreign key: a key into the partitioned `predictions` would need its created_at in
    every label and make each partition drop check the labels; the feedback store checks that the
    prediction exists, and retention deletes a prediction's label with it."""

    __tablename__ = "feedback"

    prediction_id: str = Field(primary_key=True, max_length=36)
    label: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    received_at: datetime = Field(sa_column=_ts(index=True))
    # commit order of label arrivals (a corrected label takes a new one): performance windows are ranges
    # of it below the settled watermark (service/serving/store.py, service/monitor/settled.py)
    seq: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, default=next_feedback_seq(), nullable=False, index=True),
    )


class ReferenceProfileRow(SQLModel, table=True):
    __tablename__ = "reference_profiles"
    __table_args__ = (sa.UniqueConstraint("model_name", "model_version", name="uq_reference_model_version"),)

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=50)
    source: str = Field(max_length=200)
    n_rows: int
    profile: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    sample: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(sa_column=_ts())
    # roles: the task comes from the model (retrain/task.py), the target column is named by the user
    task: str | None = Field(default=None, max_length=20)
    target: str | None = Field(default=None, max_length=200)
    # the version's performance baseline (detectors.performance_evidence.Baseline as JSON), if known
    baseline: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class ReferenceEstimator(SQLModel, table=True):
    """A version's label-free estimators, fitted on a labeled holdout (service/monitor/estimators.py):
    CBPE or DLE and the permutation importance, one JSON document; refitted when the reference changes."""

    __tablename__ = "reference_estimators"
    __table_args__ = (
        sa.UniqueConstraint("model_name", "model_version", name="uq_reference_estimators_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(max_length=200)
    model_version: str = Field(max_length=50)
    reference_created_at: datetime = Field(sa_column=_ts())
    holdout_source: str = Field(max_length=200)
    n_holdout: int
    document: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(sa_column=_ts())


class DriftRun(SQLModel, table=True):
    __tablename__ = "drift_runs"
    __table_args__ = (sa.UniqueConstraint("window_key", name="uq_drift_runs_window_key"),)

    id: int | None = Field(default=None, primary_key=True)
    window_key: str = Field(max_length=300)
    kind: str = Field(max_length=40)  # drift | performance | estimated_performance
    trigger: str = Field(default="schedule", max_length=20)
    model_name: str = Field(max_length=200, index=True)
    model_version: str = Field(max_length=50)
    window_start: datetime = Field(sa_column=_ts())
    window_end: datetime = Field(sa_column=_ts(index=True))
    n_rows: int
    status: str = Field(max_length=30, index=True)
    dataset_drift: bool = False
    drift_share: float = 0.0
    is_breach: bool = False
    summary: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    started_at: datetime = Field(sa_column=_ts())
    finished_at: datetime = Field(sa_column=_ts())
    duration_ms: float = 0.0
    # set when retention deleted rows of this window: the stored result stands, it cannot be recomputed
    rows_deleted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class FeatureResult(SQLModel, table=True):
    __tablename__ = "feature_results"
    __table_args__ = (sa.Index("ix_feature_results_feature_run", "feature", "run_id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="drift_runs.id", index=True)
    feature: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    method: str = Field(max_length=40)
    statistic: float | None = None
    p_val: float | None = None
    threshold: float | None = None
    is_drift: bool = False
    status: str = Field(max_length=30)


class Episode(SQLModel, table=True):
    __tablename__ = "episodes"
    # at most one open episode per model and kind, whatever a scheduler's lease does
    __table_args__ = (
        sa.Index(
            "uq_episodes_one_open",
            "model_name",
            "kind",
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=40)  # drift | performance | estimated_performance
    status: str = Field(max_length=10, index=True)  # open | closed
    opened_at: datetime = Field(sa_column=_ts())
    closed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    first_run_id: int = Field(foreign_key="drift_runs.id")
    last_run_id: int = Field(foreign_key="drift_runs.id")
    close_run_id: int | None = Field(default=None, foreign_key="drift_runs.id")


class Event(SQLModel, table=True):
    __tablename__ = "events"

    id: str = Field(primary_key=True, max_length=36)
    type: str = Field(max_length=50, index=True)
    created_at: datetime = Field(sa_column=_ts(index=True))
    model_name: str = Field(max_length=200)
    model_version: str | None = Field(default=None, max_length=50)
    payload: str = Field(sa_column=sa.Column(sa.Text, nullable=False))


class Webhook(SQLModel, table=True):
    __tablename__ = "webhooks"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    event_types: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    secret: str = Field(max_length=500)
    format: str = Field(default="json", max_length=10)
    # JSON list of model names whose events this hook receives; [] = every model
    models: str = Field(default="[]", sa_column=sa.Column(sa.Text, nullable=False, server_default="[]"))
    enabled: bool = True
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class Delivery(SQLModel, table=True):
    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "webhook_id", name="uq_deliveries_event_webhook"),
        sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(foreign_key="events.id", max_length=36)
    webhook_id: int = Field(foreign_key="webhooks.id", index=True)
    status: str = Field(default="pending", max_length=20)  # pending | delivered | dead
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=_ts())
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = Field(sa_column=_ts())
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="deliveries.id", index=True)
    attempted_at: datetime = Field(sa_column=_ts())
    status_code: int | None = None
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    duration_ms: float = 0.0


class RetrainJob(SQLModel, table=True):
    __tablename__ = "retrain_jobs"
    # `active_key` is the model name while a job is queued/running and NULL after: a unique index makes
    # "one active job per model" hold across processes (NULLs never collide).
    __table_args__ = (sa.UniqueConstraint("active_key", name="uq_retrain_jobs_active"),)

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(max_length=200, index=True)
    active_key: str | None = Field(default=None, max_length=200)
    # queued | running | promoting (intent recorded, aliases may move) | succeeded | rejected | failed
    status: str = Field(max_length=20, index=True)
    trigger: str = Field(max_length=20)  # episode | drift_run | manual
    reason: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    episode_id: int | None = Field(default=None, foreign_key="episodes.id")
    drift_run_id: int | None = Field(default=None, foreign_key="drift_runs.id")
    force: bool = False
    window_start: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    window_end: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    champion_version: str | None = Field(default=None, max_length=50)
    result_version: str | None = Field(default=None, max_length=50)
    details: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False))
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = Field(sa_column=_ts(index=True))
    started_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # renewed by the live worker; recovery reconciles only jobs whose heartbeat went stale
    heartbeat_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Lease(SQLModel, table=True):
    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    expires_at: datetime = Field(sa_column=_ts())


class AutomationState(SQLModel, table=True):
    """Whether the automatic loop may promote for a model: a manual rollback pauses it until a person
    resumes it (or `automation_hold_seconds` pass)."""

    __tablename__ = "automation_states"

    model_name: str = Field(primary_key=True, max_length=200)
    state: str = Field(max_length=20)  # paused | active
    reason: str = Field(default="", max_length=500)
    changed_by: str = Field(default="", max_length=200)
    changed_at: datetime = Field(sa_column=_ts())


# the lifecycle, watched-model and rollback tables: their own modules, registered here (module imports:
# each completes whichever of the two modules is imported first)
import service.db.lifecycle_tables  # noqa: E402, F401
import service.db.model_tables  # noqa: E402, F401
import service.db.rollback_tables  # noqa: E402, F401
