"""Tables printed by ``bench.estimate`` (markdown, pasted into ``bench/RESULTS.md``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Summary = Mapping[str, float | int | None]


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def trace(stream: str, rows: Sequence[Mapping[str, float]]) -> None:
    """Window by window: realized vs estimated accuracy (with band) and ROC AUC, and who breached."""
    print(f"\n{stream}, seed 0\n")
    print("| window | accuracy | estimated [band] | ROC AUC | estimated | breach (R realized, E estimated) |")
    print("|---:|---:|---|---:|---:|---|")
    for r in rows:
        flags = ("R" if r["real_breach"] else "") + ("E" if r["est_breach"] else "")
        band = f"{r['est_acc']:.3f} [{r['acc_lo']:.3f}, {r['acc_hi']:.3f}]"
        print(f"| {r['window']} | {r['acc']:.3f} | {band} | {r['auc']:.3f} | {r['est_auc']:.3f} | {flags} |")


def accuracy_table(results: Mapping[str, Sequence[Summary]], kinds: Mapping[str, str]) -> None:
    """Per stream: mean (worst seed) MAE of the estimates, coverage of the band, the drops."""
    head = ("stream", "kind", "MAE accuracy (worst seed)", "MAE accuracy, no calibration",
            "MAE ROC AUC (worst seed)", "3-SE band coverage", "accuracy drop realized / est.")  # fmt: skip
    print("\n| " + " | ".join(head) + " |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for stream, per_seed in results.items():

        def col(key: str, ps: Sequence[Summary] = per_seed) -> list[float]:
            return [float(v) for s in ps if (v := s[key]) is not None]

        acc, auc = col("mae_acc"), col("mae_auc")
        cells = [
            stream,
            kinds[stream],
            f"{np.mean(acc):.4f} ({max(acc):.4f})",
            f"{np.mean(col('mae_raw_acc')):.4f}",
            f"{np.mean(auc):.4f} ({max(auc):.4f})",
            f"{np.mean(col('coverage')):.1%}",
            f"{np.mean(col('acc_drop')):.3f} / {np.mean(col('est_drop')):.3f}",
        ]
        print("| " + " | ".join(cells) + " |")


def timing_table(results: Mapping[str, Sequence[Summary]]) -> None:
    """Per stream and seed: the first breaching window and the episode-opening window of each rule."""
    print("\nPer seed, realized / estimated (evidence rule) / estimated (NannyML band rule). Labels arrive")
    print("one window late: a realized window t is known at t+1, an estimated one at t.\n")
    print(
        "| stream | first breaching window | episode opens (2 of 3) | ROC AUC episode realized / estimated |"
    )
    print("|---|---|---|---|")
    for stream, per_seed in results.items():

        def cell(keys: tuple[str, ...], ps: Sequence[Summary] = per_seed) -> str:
            return ", ".join("/".join(_fmt(s[k]) for k in keys) for s in ps)

        first = cell(("real_breach", "est_breach", "band_breach"))
        episode = cell(("real_episode", "est_episode", "band_episode"))
        print(f"| {stream} | {first} | {episode} | {cell(('real_auc_episode', 'est_auc_episode'))} |")
