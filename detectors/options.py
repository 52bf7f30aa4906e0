"""The options of a drift check (``detectors.check.run_check``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from detectors.correction import check_correction
from detectors.multivariate import AUC_MARGIN
from detectors.select import DEFAULT_THRESHOLDS, check_method


@dataclass(frozen=True)
class CheckOptions:
    """How to decide drift.

    Parameters
    ----------
    methods : dict
        Method per feature name (``ks``, ``wasserstein``, ``psi``, ``jensenshannon``, ``chisquare``, ``z``);
        the others get Evidently 0.7's default choice.
    thresholds : dict
        Threshold per feature name or per method name (a feature's own wins).
    correction : {"none", "bonferroni", "fdr"}
        Multiple-testing correction of the p-value tests.
    drift_share : float
        Dataset drift when at least this share of the evaluated features drifted.
    min_rows : int
        Windows (and features) with fewer non-missing rows get ``insufficient_data``.
    missing_alpha, missing_min_effect : float
        The missing-value test (``detectors.missing``): a feature whose missing rate rose with
        ``p < missing_alpha`` and Cohen's h >= ``missing_min_effect`` gets status ``data_quality`` and counts
        as changed in the dataset's drift share. It runs whenever the window has ``min_rows`` rows, even
        when too few values are left for the drift test.
    effect_size_floor : float
        A p-value test only reports drift if the effect size (normalized Wasserstein / total variation
        distance) reaches this, so a huge window with a negligible shift is not drift.
    multivariate : bool
        Run the domain classifier on at most ``multivariate_max_rows`` rows (half from each side).
    exact_max_rows : int
        Largest window for which KS and Wasserstein use raw values (when the reference is kept whole).
    noise_floor : bool
        A distance method flags drift only above the distance that undrifted windows of this size reach
        with probability ``noise_floor_alpha`` (see ``detectors.noise_floor``); the reported threshold is
        the raised one. Numeric floors are simulated only below ``noise_floor_max_rows`` effective rows
        (``n * N / (n + N)``), where they can matter; categorical ones always (sparse categories).
    """

    methods: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    correction: str = "none"
    drift_share: float = 0.5
    min_rows: int = 100
    effect_size_floor: float = 0.05
    multivariate: bool = True
    multivariate_max_rows: int = 4000
    multivariate_threshold: float = 0.5 + AUC_MARGIN  # see detectors.multivariate: calibrated
    exact_max_rows: int = 100_000
    noise_floor: bool = True
    noise_floor_alpha: float = 0.01
    noise_floor_max_rows: int = 5000
    coarse_bins: int = 10
    missing_alpha: float = 0.01
    missing_min_effect: float = 0.2
    missing_rate_tolerance: float = 0.05
    out_of_range_tolerance: float = 0.01
    unseen_tolerance: float = 0.01
    performance_metric: str | None = None
    performance_tolerance: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        check_correction(self.correction)
        for method in self.methods.values():
            check_method(method)
        if not 0.0 < self.drift_share <= 1.0:
            raise ValueError(f"drift_share must be in (0, 1], got {self.drift_share}")
        if not 0.0 < self.missing_alpha < 1.0 or self.missing_min_effect < 0.0:
            raise ValueError(
                f"missing_alpha must be in (0, 1) and missing_min_effect >= 0, got {self.missing_alpha}, "
                f"{self.missing_min_effect}"
            )
        if not 0.0 < self.noise_floor_alpha < 1.0:
            raise ValueError(f"noise_floor_alpha must be in (0, 1), got {self.noise_floor_alpha}")
        if self.min_rows < 1 or self.coarse_bins < 2 or self.multivariate_max_rows < 4:
            raise ValueError("min_rows >= 1, coarse_bins >= 2 and multivariate_max_rows >= 4 are required")
        for key, value in self.thresholds.items():
            if not value > 0:
                raise ValueError(f"threshold for {key!r} must be positive, got {value}")

    def threshold_for(self, name: str, method: str) -> float:
        """Feature override, else method override, else the method's default."""
        return float(self.thresholds.get(name, self.thresholds.get(method, DEFAULT_THRESHOLDS[method])))
