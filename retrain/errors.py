"""Errors raised by the retrain package.

Every failure in training, evaluation or the registry surfaces as a :class:`RetrainError` subclass with a
message a person can act on, so the service can mark a job failed with its reason without inspecting
MLflow or scikit-learn exception types.
"""

from __future__ import annotations


class RetrainError(Exception):
    """Base class of every error the retrain package raises on purpose."""


class RegistryUnavailable(RetrainError):
    """The MLflow tracking server or registry store could not be reached."""


class ModelNotFound(RetrainError):
    """The registered model, version or alias does not exist."""


class NoChampion(ModelNotFound):
    """The registered model has no version with the ``champion`` alias."""


class NoPreviousChampion(RetrainError):
    """A rollback was asked for but no version carries the ``previous_champion`` alias."""


class ChampionChanged(RetrainError):
    """Compare-and-set on the champion failed: it is not the version the caller expected (someone moved it
    since the caller read it, e.g. a rollback during a retrain's evaluation). No alias was moved."""

    def __init__(self, message: str, *, expected: str | None, found: str | None) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class MissingSignature(RetrainError):
    """The model version was logged without a column-based signature."""


class NotEnoughData(RetrainError):
    """Too few labeled rows to train and evaluate a challenger."""


class TrainingFailed(RetrainError):
    """The training recipe raised or returned something that is not a fitted estimator."""


class EvaluationFailed(RetrainError):
    """Champion or challenger could not be scored on the holdout."""


class InvalidSetting(RetrainError, ValueError):
    """A setting (recipe spec, metric, policy, fraction) or the data's columns are unusable.

    Also a ValueError, so callers validating configuration can catch the builtin.
    """
