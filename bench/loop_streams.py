"""Concept-drift streams of the loop bench, with their offline baselines and the offline driftloop policy.

``python -m bench.loop_streams [--seeds 5,6] [--streams severe,mild]`` replays every stream of
:mod:`bench.concept_streams` offline under never retrain / retrain every window / the oracle / driftloop
and prints the figures the issue's targets are stated in. The live bench (``bench.loop``) can call
:func:`stream_baselines` for the three baselines of a stream it replays through the real service.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from statistics import mean

from bench._loop_offline import POLICIES, OfflineRun, run_offline
from bench.concept_streams import STREAMS, ConceptStream

#: share of the never -> oracle gap driftloop must recover, per stream (None: the null stream)
RECOVERY_TARGETS: dict[str, float | None] = {"severe": 0.9, "mild": 0.5, "regression": 0.7, "null": None}


@dataclass(frozen=True)
class StreamFigures:
    """Per policy the mean metric from the first drift on (all windows on the null stream) and retrains."""

    stream: str
    metric: str
    after: dict[str, float]
    overall: dict[str, float]
    retrains: dict[str, int]
    to_serve: dict[str, list[int | None]]  # per policy, per drift: windows until a post-drift model serves

    @property
    def recovered(self) -> float:
        """(driftloop - never) / (oracle - never); NaN without a gap (the null stream)."""
        gap = self.after["oracle"] - self.after["never"]
        if abs(gap) < 1e-12:
            return float("nan")
        return (self.after["driftloop"] - self.after["never"]) / gap

    def targets(self) -> dict[str, bool]:
        target = RECOVERY_TARGETS[self.stream]
        checks = {"retrains <= 1/5 of every window": 5 * self.retrains["driftloop"] <= self.retrains["every"]}
        if target is None:
            checks["zero retrains"] = self.retrains["driftloop"] == 0
        else:
            checks[f"recovered >= {target:.0%}"] = self.recovered >= target
        return checks


def stream_baselines(stream: ConceptStream) -> dict[str, OfflineRun]:
    """Never retrain, retrain every window and the oracle on ``stream``, offline (same label lag)."""
    return {p: run_offline(stream, p) for p in ("never", "every", "oracle")}


def figures(stream: ConceptStream, runs: dict[str, OfflineRun]) -> StreamFigures:
    first = stream.drifts[0] if stream.drifts else 0
    return StreamFigures(
        stream=stream.name,
        metric=stream.metric,
        after={p: mean(r.scores[first:]) for p, r in runs.items()},
        overall={p: mean(r.scores) for p, r in runs.items()},
        retrains={p: r.retrains for p, r in runs.items()},
        to_serve={p: [r.windows_to_serve(d) for d in stream.drifts] for p, r in runs.items()},
    )


def lines(f: StreamFigures) -> list[str]:
    recovered = "n/a" if f.recovered != f.recovered else f"{f.recovered:.0%}"
    out = [f"{f.stream} ({f.metric}; from the first drift on): recovered {recovered}"]
    for p in POLICIES:
        if p in f.after:
            out.append(
                f"  {p:9s} {f.after[p]:.4f} (overall {f.overall[p]:.4f}), retrains {f.retrains[p]:2d}, "
                f"windows to serve {f.to_serve[p]}"
            )
    out.append("  targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in f.targets().items()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seeds", default="5", help="comma-separated stream seeds")
    parser.add_argument("--streams", default=",".join(STREAMS))
    parser.add_argument("--log", action="store_true", help="print the driftloop policy's decisions")
    args = parser.parse_args(argv)
    ok = True
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in args.streams.split(","):
            stream = ConceptStream(name, seed=seed)
            runs = {**stream_baselines(stream), "driftloop": run_offline(stream, "driftloop")}
            result = figures(stream, runs)
            print(f"[seed {seed}] " + "\n".join(lines(result)), flush=True)
            if args.log:
                print("\n".join(f"    {line}" for line in runs["driftloop"].log))
            ok &= all(result.targets().values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
