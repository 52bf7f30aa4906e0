"""Fixtures for the retrain tests: a migrated MLflow store per test, a real ``mlflow server``, demo data."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from retrain.bootstrap import build_demo_pipeline
from retrain.synthetic import FEATURES, TARGET, generate


@pytest.fixture(scope="session")
def demo_data() -> pd.DataFrame:
    return generate(3000, seed=11)


@pytest.fixture(scope="session")
def demo_model(demo_data: pd.DataFrame) -> Pipeline:
    return build_demo_pipeline().fit(demo_data[list(FEATURES)], demo_data[TARGET])
