"""Benchmark: label-free performance estimation (CBPE) against the realized performance, window by window.

Run with ``python -m bench.estimate`` (not a test; about a minute). Per seed: a gradient-boosted classifier
is trained on 20,000 reference rows, CBPE is fitted on a separate 10,000-row labeled holdout, then every
stream of ``bench._estimate_streams`` yields 30 windows of 1,000 rows. Per window the realized accuracy and
ROC AUC (from the labels) are compared with the estimates (no labels). Both go through the same breach rule
(``detectors.estimated.estimated_breach``: 2 points worse than the reference and one-sided p < 0.01), the
realized value with its sampling error, the estimate with its own; NannyML's alert (reference outside the
3-SE band) is reported beside it. An episode opens on the second breach of three windows (the service's
default K=2 of M=3). Labels are taken to arrive one window late, so a realized breach of window ``t`` is
known at ``t + 1``; an estimated breach of window ``t`` is known at ``t``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import numpy as np
from sklearn import metrics
from sklearn.ensemble import HistGradientBoostingClassifier

from bench._estimate_report import accuracy_table, timing_table, trace
from bench._estimate_streams import FEATURES, STREAMS, Shape, draw
from detectors.cbpe import CBPE
from detectors.estimated import MetricEstimate, estimated_breach


def _realized_breach(cbpe: CBPE, value: float, est: MetricEstimate, n: int, min_effect: float) -> bool:
    # the same rule fed by labels: the realized window and reference values with their sampling errors
    ref_se = cbpe.band_error(est.metric, est.reference, cbpe.n_reference)
    real = MetricEstimate(est.metric, value, est.sampling_error, math.nan, math.nan, est.reference,
                          cbpe.band_error(est.metric, value, n), est.reference, ref_se)  # fmt: skip
    return estimated_breach(real, min_effect=min_effect).is_drift


def _band_breach(est: MetricEstimate, min_effect: float) -> bool:
    # NannyML's alert: the reference lies outside the estimate's 3-SE band (plus the minimum effect)
    return est.reference - est.value >= min_effect and est.upper < est.reference


def run_stream(
    model: HistGradientBoostingClassifier,
    est: CBPE,
    raw: CBPE,
    stream: str,
    seed: int,
    args: argparse.Namespace,
) -> list[dict[str, float]]:
    """One row per window: realized and estimated accuracy and ROC AUC, and the breach flags."""
    rng = np.random.default_rng(1000 + seed)
    shape_of = STREAMS[stream][1]
    rows = []
    for i in range(args.windows):
        x, y = draw(rng, args.window_rows, shape_of(i))
        proba, pred = model.predict_proba(x[list(FEATURES)])[:, 1], model.predict(x[list(FEATURES)])
        r = est.estimate(proba, pred)
        acc, auc = r.metric("accuracy"), r.metric("roc_auc")
        real_acc, real_auc = metrics.accuracy_score(y, pred), metrics.roc_auc_score(y, proba)
        rows.append(
            {
                "window": i,
                "acc": real_acc,
                "est_acc": acc.value,
                "raw_acc": raw.estimate(proba, pred).metric("accuracy").value,
                "acc_lo": acc.lower,
                "acc_hi": acc.upper,
                "auc": real_auc,
                "est_auc": auc.value,
                "est_breach": estimated_breach(acc, min_effect=args.min_effect).is_drift,
                "real_breach": _realized_breach(est, real_acc, acc, args.window_rows, args.min_effect),
                "band_breach": _band_breach(acc, args.min_effect),
                "est_auc_breach": estimated_breach(auc, min_effect=args.min_effect).is_drift,
                "real_auc_breach": _realized_breach(est, real_auc, auc, args.window_rows, args.min_effect),
            }
        )
    return rows


def _first(rows: list[dict[str, float]], key: str, k: int = 1, m: int = 1) -> int | None:
    """First window at which ``k`` of the last ``m`` windows breach (an episode opens)."""
    flags = [bool(r[key]) for r in rows]
    return next((i for i in range(len(flags)) if sum(flags[max(0, i - m + 1) : i + 1]) >= k), None)


def summarize(rows: list[dict[str, float]]) -> dict[str, float | int | None]:
    """MAE of the estimates, band coverage and the first breach windows of one stream and seed."""
    a = np.array([[r["acc"], r["est_acc"], r["raw_acc"], r["auc"], r["est_auc"]] for r in rows])
    inside = [r["acc_lo"] <= r["acc"] <= r["acc_hi"] for r in rows]
    return {
        "mae_acc": float(np.mean(np.abs(a[:, 1] - a[:, 0]))),
        "max_acc": float(np.max(np.abs(a[:, 1] - a[:, 0]))),
        "mae_raw_acc": float(np.mean(np.abs(a[:, 2] - a[:, 0]))),
        "mae_auc": float(np.mean(np.abs(a[:, 4] - a[:, 3]))),
        "coverage": float(np.mean(inside)),
        "acc_drop": float(a[:3, 0].mean() - a[-3:, 0].mean()),
        "est_drop": float(a[:3, 1].mean() - a[-3:, 1].mean()),
        "real_breach": _first(rows, "real_breach"),
        "est_breach": _first(rows, "est_breach"),
        "band_breach": _first(rows, "band_breach"),
        "real_episode": _first(rows, "real_breach", 2, 3),
        "est_episode": _first(rows, "est_breach", 2, 3),
        "band_episode": _first(rows, "band_breach", 2, 3),
        "real_auc_episode": _first(rows, "real_auc_breach", 2, 3),
        "est_auc_episode": _first(rows, "est_auc_breach", 2, 3),
    }


def fit_seed(seed: int) -> tuple[HistGradientBoostingClassifier, CBPE, CBPE]:
    """The seed's model, its CBPE estimator and the same estimator with calibration switched off."""
    rng = np.random.default_rng(seed)
    x, y = draw(rng, 20_000, Shape())
    model = HistGradientBoostingClassifier(max_iter=200, random_state=seed).fit(x[list(FEATURES)], y)
    xh, yh = draw(rng, 10_000, Shape())
    proba, pred = model.predict_proba(xh[list(FEATURES)])[:, 1], model.predict(xh[list(FEATURES)])
    est = CBPE.fit(yh, proba, pred, seed=seed)
    raw = dataclasses.replace(est, calibrators=(None,))
    return model, est, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--windows", type=int, default=30)
    parser.add_argument("--window-rows", type=int, default=1000)
    parser.add_argument("--min-effect", type=float, default=0.02)
    parser.add_argument(
        "--trace", default="harder-region,concept", help="streams whose seed-0 windows to print"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, list[dict[str, float | int | None]]] = {s: [] for s in STREAMS}
    for seed in range(args.seeds):
        model, est, raw = fit_seed(seed)
        kept = "kept" if est.calibrators[0] is not None else "skipped"
        print(f"seed {seed}: reference accuracy {est.reference['accuracy']:.4f}, ROC AUC "
              f"{est.reference['roc_auc']:.4f}; isotonic {kept} (held-out ECE {est.ece_raw[0]:.4f} raw, "
              f"{est.ece_calibrated[0]:.4f} isotonic)")  # fmt: skip
        for stream in STREAMS:
            rows = run_stream(model, est, raw, stream, seed, args)
            results[stream].append(summarize(rows))
            if seed == 0 and stream in args.trace.split(","):
                trace(stream, rows)
    accuracy_table(results, {s: kind for s, (kind, _) in STREAMS.items()})
    timing_table(results)
    elapsed = time.perf_counter() - started
    size = f"{args.seeds} seeds x {len(STREAMS)} streams x {args.windows} windows of {args.window_rows} rows"
    print(f"\n{size}: {elapsed:.0f} s")


if __name__ == "__main__":
    main()
