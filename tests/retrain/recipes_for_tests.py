"""Training recipes used by the tests through ``"recipes_for_tests:function"`` specs."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

CALLS: list[tuple[int, Any]] = []


def majority_class(X: pd.DataFrame, y: pd.Series, champion: Any) -> Any:
    """A deliberately bad model: always the most frequent class."""
    return DummyClassifier(strategy="most_frequent").fit(X, y)


def boosted(X: pd.DataFrame, y: pd.Series, champion: Pipeline) -> Any:
    """Reuse the champion's preprocessing, swap the classifier; records what it was called with."""
    CALLS.append((len(X), champion))
    preprocess = clone(champion.named_steps["preprocess"])  # clone: never mutate the champion
    model = Pipeline([("preprocess", preprocess), ("model", HistGradientBoostingClassifier(max_iter=10))])
    return model.fit(X, y)


def unfitted(X: pd.DataFrame, y: pd.Series, champion: Any) -> Any:
    return DummyClassifier()


def explodes(X: pd.DataFrame, y: pd.Series, champion: Any) -> Any:
    raise RuntimeError("out of memory while training")


NOT_CALLABLE = 42
