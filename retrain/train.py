"""Train a challenger: by default a clone of the champion refit on new data, or a custom recipe.

Recipe contract
---------------
A recipe is a ``"package.module:function"`` string naming a callable ``fn(X, y, champion) -> estimator``:

- ``X`` is a pandas DataFrame holding exactly the model's feature columns, ``y`` the matching labels;
- ``champion`` is the current champion estimator (read it, clone it, or ignore it; do not mutate it);
- it returns a *fitted* scikit-learn compatible estimator with ``predict`` (and ``predict_proba`` for
  classifiers) that accepts a DataFrame of the same columns. It is logged with MLflow's sklearn flavor.

Anything the recipe raises becomes :class:`~retrain.errors.TrainingFailed` with the original message.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from retrain.errors import InvalidSetting, TrainingFailed

Recipe = Callable[[pd.DataFrame, pd.Series, Any], Any]


def load_recipe(spec: str) -> Recipe:
    """Import the callable named by ``"package.module:function"``.

    Raises
    ------
    InvalidSetting
        (a ValueError) if the spec is malformed, the module cannot be imported or the attribute is missing
        or not callable.

    Examples
    --------
    >>> load_recipe("sklearn.base:clone").__name__
    'clone'
    >>> load_recipe("no_colon_here")
    Traceback (most recent call last):
    ...
    retrain.errors.InvalidSetting: recipe must look like 'package.module:function', got 'no_colon_here'
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name.strip() or not attr.strip():
        raise InvalidSetting(f"recipe must look like 'package.module:function', got {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidSetting(f"recipe {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    for part in attr.split("."):
        if not hasattr(target, part):
            raise InvalidSetting(f"recipe {spec!r}: module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise InvalidSetting(f"recipe {spec!r} is not callable")
    recipe: Recipe = target
    return recipe


def train_challenger(champion_estimator: Any, X: pd.DataFrame, y: pd.Series, *, recipe: str = "") -> Any:
    """Fit a challenger on ``X``, ``y``.

    Parameters
    ----------
    champion_estimator
        The current champion; the default recipe clones its (unfitted) configuration.
    X, y
        Training features and labels.
    recipe
        Empty for ``sklearn.base.clone(champion).fit(X, y)``, else a ``"module:function"`` spec (see the
        module docstring for the contract).

    Raises
    ------
    InvalidSetting
        For a malformed or unimportable recipe.
    TrainingFailed
        If fitting raises, or the recipe returns something unfitted or without ``predict``.
    """
    if recipe:
        fn = load_recipe(recipe)
        label = recipe
    else:
        fn = _refit_clone
        label = "clone of the champion"
    try:
        estimator = fn(X, y, champion_estimator)
    except Exception as exc:
        raise TrainingFailed(f"training with {label} failed: {type(exc).__name__}: {exc}") from exc
    if estimator is None or not callable(getattr(estimator, "predict", None)):
        raise TrainingFailed(
            f"recipe {label} returned {type(estimator).__name__}, not an estimator with predict"
        )
    try:
        check_is_fitted(estimator)
    except (NotFittedError, TypeError) as exc:
        raise TrainingFailed(f"recipe {label} returned an unfitted {type(estimator).__name__}") from exc
    return estimator


def _refit_clone(X: pd.DataFrame, y: pd.Series, champion: Any) -> Any:
    return clone(champion).fit(X, y)
