"""Drift statistics: reference profiles, per-feature tests, corrections and a domain classifier.

Pure numpy/scipy/pandas (scikit-learn for performance metrics and estimation); no database, web or MLflow.
"""

from detectors.check import CheckOptions, DatasetDriftResult, FeatureDriftResult, run_check
from detectors.profile import FeatureProfile, ReferenceProfile

__all__ = [
    "CheckOptions",
    "DatasetDriftResult",
    "FeatureDriftResult",
    "FeatureProfile",
    "ReferenceProfile",
    "run_check",
]
