"""One retrain: champion -> challenger -> evaluation -> registration -> gate -> promotion.

Aliases move only in :meth:`Registry.promote`, the last step, so a failure anywhere before it leaves
``champion`` where it was. Every failure is a :class:`~retrain.errors.RetrainError` with a readable reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal, get_args

import pandas as pd

from detectors.performance_evidence import Baseline
from retrain.baseline import holdout_baseline
from retrain.errors import ChampionChanged, InvalidSetting, NoChampion, NotEnoughData, RetrainError
from retrain.evaluate import METRICS, Evaluation, evaluate, evaluation_metrics
from retrain.paired import DEFAULT_ALPHA, DEFAULT_RESAMPLES
from retrain.post_change import post_change_split
from retrain.registry import CHALLENGER, Registry
from retrain.train import train_challenger

Policy = Literal["recent", "reference_plus_recent"]
POLICIES: tuple[str, ...] = get_args(Policy)
#: Wraps the alias moves of a promotion, called with (expected champion, challenger): the service records
#: its intent and holds the model's champion lease inside it; raising refuses the promotion.
PromotionGuard = Callable[[str, str], AbstractContextManager[object]]


@dataclass(frozen=True)
class RetrainOutcome:
    """What a completed retrain did. Failed retrains raise instead of returning."""

    status: Literal["promoted", "rejected"]
    challenger_version: str
    champion_version_before: str
    evaluation: Evaluation
    n_train: int
    n_holdout: int
    reason: str
    #: the challenger trained (and was judged) on rows after ``change_at`` only
    post_change: bool = False
    #: which rows trained the challenger, in words (a fallback says why), for the job record
    data_reason: str = ""
    #: the challenger's holdout baseline of ``metric`` (None without an evidence test): store it with the
    #: version, the performance checks of a promoted challenger compare with it
    baseline: Baseline | None = None


def run_retrain(
    registry: Registry,
    name: str,
    labeled: pd.DataFrame,
    *,
    features: Sequence[str],
    target: str,
    time_column: str,
    reference: pd.DataFrame | None = None,
    policy: Policy = "recent",
    holdout_fraction: float = 0.2,
    min_rows: int = 200,
    metric: str = "accuracy",
    margin: float = 0.0,
    recipe: str = "",
    force: bool = False,
    tags: Mapping[str, str] | None = None,
    on_step: Callable[[str], None] | None = None,
    change_at: Any = None,
    min_post_change_rows: int | None = None,
    alpha: float | None = DEFAULT_ALPHA,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    promotion_guard: PromotionGuard | None = None,
) -> RetrainOutcome:
    """Train a challenger on recent labeled rows and promote it if it beats the champion.

    Parameters
    ----------
    labeled
        Production rows with ``features``, ``target`` (the feedback label) and ``time_column``. Rows with
        a missing label are dropped. The newest ``holdout_fraction`` of them is the holdout.
    reference
        The champion's training data; added to the training set under ``policy="reference_plus_recent"``.
    min_rows
        Fewest labeled rows worth retraining on.
    metric, margin, alpha
        The gate: the challenger must beat the champion on ``metric`` by at least ``margin`` and win a
        paired test on the holdout at ``alpha`` (McNemar / a paired bootstrap of ``n_resamples`` resamples
        seeded by ``seed``; see :func:`retrain.evaluate.evaluate`); ``alpha=None`` skips the test.
    change_at
        Start of the episode's first breaching window (same type as ``time_column``): train and hold out
        only rows from it on, when at least ``min_post_change_rows`` (default ``min_rows``) exist; else the
        recent rows, with ``data_reason`` saying so.
    force
        Promote even if the gate fails (manual triggers only); the version is tagged ``forced``.
    tags
        Trigger and job details put on the run and the new version.
    on_step
        Called with a short description as each step starts (for job progress).
    promotion_guard
        Context around the promotion (see :data:`PromotionGuard`). The promotion is compare-and-set on
        the champion evaluated against: if it changed meanwhile, the outcome is ``rejected`` ("champion
        changed during evaluation") and no alias moves.

    Raises
    ------
    RetrainError
        ``NoChampion``, ``NotEnoughData``, ``InvalidSetting``, ``TrainingFailed``, ``EvaluationFailed``,
        ``RegistryUnavailable``, or a plain RetrainError naming the step for anything unexpected.
    """
    settings = _Settings(
        features=tuple(features), target=target, time_column=time_column, policy=policy,
        holdout_fraction=holdout_fraction, min_rows=min_rows, metric=metric, margin=margin,
        recipe=recipe, force=force, tags=dict(tags or {}), change_at=change_at,
        min_post_change_rows=min_rows if min_post_change_rows is None else min_post_change_rows,
        alpha=alpha, n_resamples=n_resamples, seed=seed,
    )  # fmt: skip
    _validate(settings)
    step_name = "start"

    def step(description: str) -> None:
        nonlocal step_name
        step_name = description
        if on_step is not None:
            on_step(description)

    try:
        return _run(registry, name, labeled, reference, settings, step, promotion_guard)
    except RetrainError:
        raise
    except Exception as exc:
        raise RetrainError(
            f"retrain of {name!r} failed at step {step_name!r}: {type(exc).__name__}: {exc}"
        ) from exc


@dataclass(frozen=True)
class _Settings:
    features: tuple[str, ...]
    target: str
    time_column: str
    policy: str
    holdout_fraction: float
    min_rows: int
    metric: str
    margin: float
    recipe: str
    force: bool
    tags: dict[str, str]
    change_at: Any = None
    min_post_change_rows: int = 200
    alpha: float | None = DEFAULT_ALPHA
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = 0


def _run(
    registry: Registry,
    name: str,
    labeled: pd.DataFrame,
    reference: pd.DataFrame | None,
    s: _Settings,
    step: Callable[[str], None],
    guard: PromotionGuard | None = None,
) -> RetrainOutcome:
    features, target, time_column = list(s.features), s.target, s.time_column
    step("load champion")
    champion = registry.champion(name)
    if champion is None:
        raise NoChampion(f"model {name!r} has no champion to retrain from; run `driftloop bootstrap` first")
    champion_model = registry.load_estimator(name, champion.version)

    step("check data")
    missing = [c for c in (*features, target, time_column) if c not in labeled.columns]
    if missing:
        raise InvalidSetting(f"labeled data lacks columns {missing}")
    rows = labeled.loc[labeled[target].notna(), [*features, target, time_column]]
    if len(rows) < s.min_rows:
        raise NotEnoughData(
            f"{len(rows)} labeled rows for {name!r}, at least {s.min_rows} are needed to retrain"
        )

    step("split by time")
    data = post_change_split(
        rows, time_column=time_column, change_at=s.change_at, holdout_fraction=s.holdout_fraction,
        min_rows=s.min_post_change_rows,
    )  # fmt: skip
    recent, holdout = data.train, data.holdout
    # after a change the old concept's reference rows would teach the old concept again
    train, used_policy = _training_set(recent, None if data.post_change else reference, s)

    step("train challenger")
    challenger = train_challenger(champion_model, train[features], train[target], recipe=s.recipe)

    step("evaluate on holdout")
    evaluation = evaluate(
        champion_model,
        challenger,
        holdout,
        features=features,
        target=target,
        metric=s.metric,
        margin=s.margin,
        alpha=s.alpha,
        n_resamples=s.n_resamples,
        seed=s.seed,
    )

    step("register challenger")
    version = registry.log_and_register(
        name,
        challenger,
        train,
        features=features,
        target=target,
        params={
            **_params(s, used_policy, champion.version, train, holdout),
            "post_change": data.post_change,
            "training_data": data.reason[:500],
        },  # fmt: skip
        metrics=evaluation_metrics(evaluation),
        tags={**s.tags, "validation_status": "pending", "champion_version_before": champion.version},
        run_name=f"retrain-{name}",
        extra_artifacts={"holdout/holdout.parquet": holdout},
    )
    registry.set_alias(name, CHALLENGER, version.version)

    step("gate")
    verdict = _verdict(evaluation)
    if evaluation.passed or s.force:
        status_tag = "passed" if evaluation.passed else "forced"
        registry.tag_version(name, version.version, {"validation_status": status_tag})
        status: Literal["promoted", "rejected"] = "promoted"
        reason = verdict if evaluation.passed else f"forced: {verdict}"
        try:
            with (guard or _no_guard)(champion.version, version.version):
                registry.promote(name, version.version, expected_champion=champion.version)
        except ChampionChanged as exc:  # a rollback (or another promotion) moved it: this gate is moot
            registry.tag_version(name, version.version, {"validation_status": "rejected"})
            status = "rejected"
            reason = f"champion changed during evaluation: evaluated against version {champion.version}, "
            reason += f"the champion is now version {exc.found or 'none'}; {verdict}"
    else:
        registry.tag_version(name, version.version, {"validation_status": "rejected"})
        status, reason = "rejected", verdict
    return RetrainOutcome(
        status=status,
        challenger_version=version.version,
        champion_version_before=champion.version,
        evaluation=evaluation,
        n_train=len(train),
        n_holdout=len(holdout),
        reason=reason,
        post_change=data.post_change,
        data_reason=data.reason,
        baseline=holdout_baseline(challenger, holdout, features=features, target=target, metric=s.metric),
    )


def _no_guard(_expected: str, _challenger: str) -> AbstractContextManager[object]:
    return nullcontext()


def _validate(s: _Settings) -> None:
    if s.policy not in POLICIES:
        raise InvalidSetting(f"unknown policy {s.policy!r}; choose one of {', '.join(POLICIES)}")
    if not 0.0 < s.holdout_fraction < 1.0:
        raise InvalidSetting(f"holdout_fraction must be in (0, 1), got {s.holdout_fraction}")
    if s.metric not in METRICS:
        raise InvalidSetting(f"unknown metric {s.metric!r}; choose one of {', '.join(METRICS)}")
    if s.min_rows < 2:
        raise InvalidSetting(f"min_rows must be >= 2, got {s.min_rows}")
    if s.min_post_change_rows < 2:
        raise InvalidSetting(f"min_post_change_rows must be >= 2, got {s.min_post_change_rows}")
    if s.alpha is not None and not 0.0 < s.alpha < 1.0:
        raise InvalidSetting(f"alpha must be in (0, 1) or None, got {s.alpha}")


def _training_set(
    recent: pd.DataFrame, reference: pd.DataFrame | None, s: _Settings
) -> tuple[pd.DataFrame, str]:
    """Recent rows, plus the labeled reference rows under ``reference_plus_recent``."""
    if s.policy != "reference_plus_recent" or reference is None or s.target not in reference.columns:
        # without a labeled reference there is nothing to add; the run records the policy actually used
        return recent, "recent"
    columns = [c for c in (*s.features, s.target, s.time_column) if c in reference.columns]
    old = reference.loc[reference[s.target].notna(), columns]
    return pd.concat([old, recent], ignore_index=True), "reference_plus_recent"


def _params(
    s: _Settings, policy: str, champion_version: str, train: pd.DataFrame, holdout: pd.DataFrame
) -> dict[str, Any]:
    """Run parameters: the settings, the policy actually applied and the data window."""
    return {
        "policy": policy,
        "holdout_fraction": s.holdout_fraction,
        "min_rows": s.min_rows,
        "metric": s.metric,
        "margin": s.margin,
        "recipe": s.recipe or "clone",
        "force": s.force,
        "champion_version_before": champion_version,
        "n_train": len(train),
        "n_holdout": len(holdout),
        "train_end": str(train[s.time_column].max()),
        "holdout_start": str(holdout[s.time_column].min()),
        "holdout_end": str(holdout[s.time_column].max()),
    }


def _verdict(evaluation: Evaluation) -> str:
    direction = "higher" if evaluation.higher_is_better else "lower"
    outcome = "beats" if evaluation.passed else "does not beat"
    text = (
        f"challenger {outcome} champion on {evaluation.metric} ({direction} is better): "
        f"{evaluation.challenger_score:.4f} vs {evaluation.champion_score:.4f}, "
        f"improvement {evaluation.improvement:+.4f}, margin {evaluation.margin:g}, "
        f"{evaluation.n_holdout} holdout rows"
    )
    paired = evaluation.paired
    if paired is None:
        return text
    return f"{text}; {paired.test} p={paired.p_val:.3g} at alpha {paired.alpha:g}"
