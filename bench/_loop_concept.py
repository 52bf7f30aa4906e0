"""The concept-drift streams replayed live through a real `driftloop serve`, with the user's own model
registered the way docs/byom.md says (mlflow.sklearn.log_model with a signature from the DataFrame, skops
trusted types for the tree, alias `champion`, then `driftloop reference set 1 FILE --target y`), never by
`driftloop bootstrap`. Default settings except the window size and the cooldown (plus the polling
intervals, which only set how fast the replay may go). Labels of a window arrive after the next window was
served. Never / every window / oracle come from the offline replay of the same rows and label lag
(`bench._loop_offline`), which serves exactly what those policies would.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np
import orjson

from bench._loop_offline import OfflineRun
from bench._loop_service import BIN, MODEL, Api, LoopServer, Observer, episodes, jobs, settle
from bench.concept_streams import FEATURES, TARGET, ConceptStream
from bench.loop_streams import StreamFigures, figures, stream_baselines


def concept_settings(window_rows: int) -> dict[str, str]:
    """Only what the issue allows to differ from the defaults: window size and cooldown (and how often
    the scheduler, worker and model poller look, so that a window takes seconds, not minutes)."""
    return {
        "DRIFTLOOP_WINDOW_ROWS": str(window_rows),
        "DRIFTLOOP_PERFORMANCE_WINDOW_ROWS": str(window_rows),
        "DRIFTLOOP_RETRAIN_COOLDOWN_SECONDS": "0",
        "DRIFTLOOP_DRIFT_CHECK_INTERVAL": "0.5",
        "DRIFTLOOP_RETRAIN_POLL_SECONDS": "0.5",
        "DRIFTLOOP_MODEL_POLL_SECONDS": "0.5",
        "DRIFTLOOP_RETRAIN_ON_EPISODE": "true",
    }


def register_user_model(stream: ConceptStream, root: Path, env: dict[str, str]) -> None:
    """docs/byom.md, steps 2 and 3, in the service's own MLflow store."""
    import mlflow
    import skops.io
    from mlflow.models import infer_signature

    model, train, _ = stream.fit_user_model()
    X = train[list(FEATURES)]
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment(f"user-{stream.name}", artifact_location=str(root / "mlartifacts"))
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            input_example=X.head(5),
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
            # the one addition to the doc: stated requirements skip MLflow's requirement inference, which
            # imports the model in a subprocess (minutes on a loaded machine); serving reads neither
            pip_requirements=["scikit-learn", "skops"],
        )
    version = mlflow.register_model(info.model_uri, MODEL)
    mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", str(version.version))
    reference = root / "train.parquet"
    train.to_parquet(reference, index=False)
    done = subprocess.run(
        [str(BIN / "driftloop"), "reference", "set", str(version.version), str(reference), "--target",
         TARGET],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"driftloop reference set failed:\n{done.stdout}\n{done.stderr}")


@dataclass
class LiveRun:
    stream: str
    scores: list[float] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)  # the version(s) that answered each window
    jobs: list[dict[str, Any]] = field(default_factory=list)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def retrains(self) -> int:
        return sum(j["status"] in ("succeeded", "rejected") for j in self.jobs)

    def windows_to_serve(self, drift: int) -> int | None:
        """Windows from the drift until a version promoted after it answers every row (labels are a window
        late: the first post-drift labels arrive after window drift + 1 was served, so 2 is the least)."""
        before = self.versions[drift - 1] if drift > 0 else self.versions[0]
        for w in range(drift, len(self.versions)):
            if "," not in self.versions[w] and self.versions[w] != before.split(",")[-1]:
                return w - drift
        return None


def run_live(stream: ConceptStream, root: Path, progress: Any = print, timeout: float = 1500.0) -> LiveRun:
    """Replay ``stream`` through a fresh service; stops with what it has after ``timeout`` seconds."""
    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    server = LoopServer.prepare(root, concept_settings(stream.window_rows), bootstrap=False)
    register_user_model(stream, root, server.env)
    run = LiveRun(stream.name)
    frame = stream.frame()
    try:
        server.start()
        assert server.engine is not None
        api, observer = Api(server.url), Observer(server.engine, stream.window_rows)
        try:
            settle(api, observer)
            pending: tuple[list[str], list[Any]] | None = None
            for index in range(stream.windows):
                if time.monotonic() - started > timeout:
                    progress(f"  {stream.name}: time bound reached after {index} windows")
                    break
                records, truth = stream.records(frame, index)
                answers = api.predict(records)
                pred = np.array([a["prediction"] for a in answers], dtype=float)
                y = np.array(truth, dtype=float)
                score = (
                    float(np.sqrt(np.mean((pred - y) ** 2)))
                    if stream.metric == "rmse"
                    else float(np.mean(pred == y))
                )
                run.scores.append(score)
                run.versions.append(",".join(sorted({a["model_version"] for a in answers}, key=int)))
                if pending is not None:
                    api.feedback(*pending)
                pending = ([a["prediction_id"] for a in answers], truth)
                settle(api, observer, timeout=240.0)
                progress(
                    f"  {stream.name:10s} window {index:2d} {stream.metric} {score:.4f} v{run.versions[-1]}"
                )
        finally:
            api.close()
        run.jobs, run.episodes = jobs(server.engine), episodes(server.engine)
    except Exception:
        progress(f"server log tail ({stream.name}):\n{server.log_tail()}")
        raise
    finally:
        server.stop()
    run.seconds = time.monotonic() - started
    return run


def live_figures(stream: ConceptStream, live: LiveRun) -> StreamFigures:
    """The offline never / every / oracle baselines with the live driftloop run in place of the offline
    policy (over the windows the live run served)."""
    offline = stream_baselines(stream)
    n = len(live.scores)
    runs = {
        name: OfflineRun(
            name,
            scores=r.scores[:n],
            models=r.models[:n],
            trained_after=r.trained_after,
            retrains=r.retrains if n == stream.windows else _retrains_within(name, stream, n),
        )  # fmt: skip
        for name, r in offline.items()
    }
    result = figures(stream, runs)
    first = stream.drifts[0] if stream.drifts else 0
    after = {**result.after, "driftloop": mean(live.scores[first:])}
    overall = {**result.overall, "driftloop": mean(live.scores)}
    retrains = {**result.retrains, "driftloop": live.retrains}
    to_serve = {**result.to_serve, "driftloop": [live.windows_to_serve(d) for d in stream.drifts]}
    return StreamFigures(stream.name, stream.metric, after, overall, retrains, to_serve)


def _retrains_within(policy: str, stream: ConceptStream, n: int) -> int:
    if policy == "every":
        return max(n - 1, 0)
    if policy == "oracle":
        return sum(1 for d in stream.drifts if d + 1 < n)
    return 0


def report(streams: list[tuple[ConceptStream, LiveRun, StreamFigures]], total: float, when: str) -> str:
    """The RESULTS.md section of the live concept streams."""
    out = [
        "## Retrain loop on concept drift, your own model (`python -m bench.loop --concept ...`)",
        "",
        f"### {when}, {total:.0f} s in all",
        "",
        "Per stream a fresh `driftloop serve` (embedded scheduler, SQLite, local MLflow store) with the "
        "stream's user model (DecisionTree classifier / GradientBoosting regressor) registered as "
        "docs/byom.md "
        "says and `driftloop reference set 1 train.parquet --target y`; labels one window late; settings: "
        + ", ".join(f"`{k}={v}`" for k, v in concept_settings(streams[0][0].window_rows).items())
        + ", everything else at its default. never / every / oracle: the offline replay of the same rows and "
        "label lag (`bench/_loop_offline.py`). Mean metric from the first drift on (all windows on null); "
        "windows to serve = windows from the drift until a post-drift version answers every row.",
        "",
        "| stream | metric | never | every window | oracle | driftloop | recovered | retrains (every / "
        "oracle / driftloop) | windows to serve | targets |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for stream, live, f in streams:
        rec = "n/a" if f.recovered != f.recovered else f"{f.recovered:.0%}"
        targets = ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in f.targets().items())
        out.append(
            f"| {stream.name} ({len(live.scores)} of {stream.windows} windows) | {f.metric} | "
            f"{f.after['never']:.4f} | {f.after['every']:.4f} | {f.after['oracle']:.4f} | "
            f"{f.after['driftloop']:.4f} | {rec} | {f.retrains['every']} / {f.retrains['oracle']} / "
            f"{f.retrains['driftloop']} | {f.to_serve['driftloop']} | {targets} |"
        )
    out += ["", "Jobs and episodes:", ""]
    for stream, live, _ in streams:
        for e in live.episodes:
            out.append(
                f"- {stream.name} episode {e['id']} ({e['kind']}, {e['status']}): {e['message'][:220]}"
            )
        for j in live.jobs:
            raw = j.get("details")
            gate = orjson.loads(raw).get("gate", "") if isinstance(raw, str | bytes) and raw else ""
            gate = gate or j.get("error") or ""
            out.append(
                f"- {stream.name} job {j['id']} {j['status']} v{j['result_version']}: {str(gate)[:220]}"
            )
    return "\n".join(out)
