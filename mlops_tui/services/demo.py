"""The demo workspace: the sample scenario trained through the same harness and runner a
user's retrain takes, with champions and the production target's history recorded."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlops_tui.core.errors import ConflictError, MlopsError
from mlops_tui.core.models import DeploymentKind, ModelVersion, Trigger
from mlops_tui.runners.base import wait_for
from mlops_tui.services import jobs as job_service
from mlops_tui.services.deployments import record_deployment, resume, rollback
from mlops_tui.services.ingest import ingest_file
from mlops_tui.services.retrain import RetrainRequest, start_retrain
from mlops_tui.services.serving import sync as publish
from mlops_tui.services.workspace import (
    CONFIG_NAME,
    Workspace,
    default_config_text,
    init_workspace,
    open_workspace,
)
from mlops_tui.store import Tx
from mlops_tui.store.data_time import newest_observation

Progress = Callable[[str], None]


def sample_config_text() -> str:
    """The default mlops.toml with the sample scenario's data contract and a 6h window."""
    from mlops_tui.sample import packaged_ground_truth

    truth = packaged_ground_truth()
    data = "\n".join([
        "[data]",
        "# The sample scenario: a paint line whose car model (the regime) changes.",
        f'id_column = "{truth["id_column"]}"',
        f'timestamp_column = "{truth["time_column"]}"',
        f'label_column = "{truth["label"]}"',
        f'regime_column = "{truth["regime_column"]}"',
        "numeric = [" + ", ".join(f'"{c}"' for c in truth["features_numeric"]) + "]",
        "categorical = [" + ", ".join(f'"{c}"' for c in truth["features_categorical"]) + "]",
        f'window = "{truth["window"]}"',
        "",
    ])
    text = re.sub(r"(?ms)^\[data\]\n.*?(?=^\[drift\])", data + "\n", default_config_text())
    # Drift: time-of-day features (the shift name follows the hour) always differ between a
    # 6h window and a whole-day reference, so they are not judged; and at 360 rows a window,
    # thresholds derived from the reference keep single-feature noise from flagging.
    ignored = ", ".join(f'"{c}"' for c in truth.get("time_of_day_features", []))
    text = text.replace("ignore = []", f"ignore = [{ignored}]", 1)
    return text.replace('threshold_mode = "fixed"', 'threshold_mode = "reference"', 1)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class DemoPlanStep:
    regime: str
    since: str
    until: str
    trigger: Trigger
    reason: str


def plan(periods: list[dict]) -> list[list[DemoPlanStep]]:
    """Rounds of retrains that follow the line's timeline; regimes in a round run in parallel."""
    sedan1, suv, _sedan2, pickup, sedan3 = periods
    return [
        [DemoPlanStep("sedan", sedan1["start"], sedan1["end"], Trigger.MANUAL,
                      "first model for the sedan line"),
         DemoPlanStep("suv", suv["start"], "2026-01-16T00:00:00Z", Trigger.REGIME_NEW,
                      "new regime: suv"),
         DemoPlanStep("pickup", pickup["start"], "2026-01-28T00:00:00Z", Trigger.REGIME_NEW,
                      "new regime: pickup")],
        [DemoPlanStep("sedan", sedan1["start"], _sedan2["end"], Trigger.SCHEDULE,
                      "weekly retrain on both sedan stretches"),
         DemoPlanStep("suv", suv["start"], suv["end"], Trigger.SCHEDULE,
                      "weekly retrain on the full suv stretch"),
         DemoPlanStep("pickup", pickup["start"], pickup["end"], Trigger.SCHEDULE,
                      "weekly retrain on the full pickup stretch")],
        [DemoPlanStep("sedan", "2026-02-03T00:00:00Z", sedan3["end"], Trigger.DRIFT,
                      "oven_temp_c drifted in the last sedan stretch")],
    ]


@dataclass(frozen=True)
class DemoResult:
    workspace: Workspace
    versions: list[ModelVersion]
    seconds: float
    built: bool


def build_demo(directory: Path, progress: Progress | None = None) -> DemoResult:
    """Create (or reuse) the demo workspace in `directory`."""
    say = progress or (lambda message: None)
    started = time.monotonic()
    if (directory / CONFIG_NAME).exists():
        from mlops_tui.services.deployment_reads import serving_state

        existing = open_workspace(directory)
        if existing.config.serving.default_target not in serving_state(existing).active:
            raise ConflictError(  # e.g. a demo interrupted before it finished
                f"{directory} holds a workspace that serves no version on "
                f"{existing.config.serving.default_target} (an interrupted demo?): remove it "
                "or choose another --workspace")
        say(f"using the existing demo workspace in {directory}")
        return DemoResult(existing, [], 0.0, built=False)
    from mlops_tui.sample import (
        packaged_ground_truth,
        packaged_observations_path,
        packaged_pipeline_dir,
    )

    workspace = init_workspace(directory, config_text=sample_config_text(),
                               command="mlops-tui demo")
    shutil.copytree(packaged_pipeline_dir(), workspace.root / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    say(f"workspace created in {workspace.root}")
    say(ingest_file(workspace, packaged_observations_path()).message)
    truth = packaged_ground_truth()
    versions: list[ModelVersion] = []
    best: dict[str, ModelVersion] = {}
    metric = workspace.config.pipeline.metric
    # History sits at the scenario's data times, so the drift timeline shows it: a promotion
    # at the end of the data its model was trained on, a deploy or rollback at the start of
    # the period it serves (no later than the newest observation).
    with workspace.store.read() as tx:
        newest = _newest_observation(tx)
    for number, steps in enumerate(plan(truth["periods"]), 1):
        say(f"round {number}: training {', '.join(s.regime for s in steps)} "
            "(local runner, same harness as any retrain)")
        round_versions = _run_round(workspace, steps, say, newest)
        versions.extend(round_versions)
        for step, version in zip(steps, round_versions, strict=True):
            current = best.get(version.regime)
            if version.trigger is Trigger.DRIFT:
                continue  # a drift retrain is a candidate: the operator decides
            if current is None or version.metrics[metric] >= current.metrics[metric] - 0.01:
                best[version.regime] = version
                record_deployment(
                    workspace, kind=DeploymentKind.CHAMPION, subject=version.regime,
                    version_id=version.id, action="promote", publish=False,
                    reason=f"demo: best holdout {metric} for {version.regime} "
                           f"({version.metrics[metric]:.3f})",
                    data_time=min(_at(step.until), newest))
    # The production target follows the line's timeline: switching back to an earlier
    # regime reuses its champion (auto-deploy) instead of retraining. The first switch back
    # is an operator's rollback through the same service as `mlops-tui rollback`; it pins
    # production until the operator hands it back with `ct resume`.
    target = workspace.config.serving.default_target
    seen: set[str] = set()
    rolled_back = False
    for period in truth["periods"]:
        champion = best[period["regime"]]
        if period["regime"] in seen and not rolled_back:
            rolled_back = True
            say(rollback(workspace, target=target, to=champion.id,
                         reason=f"demo: the line went back to {period['regime']} at "
                                f"{period['start']}; serve its model instead of retraining",
                         data_time=_at(period["start"])).message)
            resume(workspace, target=target,
                   reason="demo: the switch went well; automatic deployment may go on",
                   data_time=_at(period["start"]))
            continue
        seen.add(period["regime"])
        record_deployment(
            workspace, kind=DeploymentKind.ACTIVE, subject=target, version_id=champion.id,
            action="deploy", publish=False, data_time=_at(period["start"]),
            reason=f"demo: the line switched to {period['regime']} at {period['start']}")
    publish(workspace, unit="demo")
    # drift recorded as `mlops-tui drift show` does: the dashboard's overview reads it
    from mlops_tui.services.drift_compute import compute_drift, record_drift
    from mlops_tui.services.references import ensure_profiles

    ensure_profiles(workspace)
    report = compute_drift(workspace)
    record_drift(workspace, report)
    say(f"drift recorded for {len(report.windows)} windows")
    seconds = time.monotonic() - started
    say(f"demo built: {len(versions)} versions in {seconds:.1f}s")
    return DemoResult(workspace, versions, seconds, built=True)


def _newest_observation(tx: Tx) -> datetime:
    return newest_observation(tx).replace(tzinfo=UTC)


def _run_round(workspace: Workspace, steps: list[DemoPlanStep], say: Progress,
               newest: datetime) -> list[ModelVersion]:
    started = [start_retrain(workspace, RetrainRequest(
        regime=s.regime, since=_at(s.since), until=_at(s.until), trigger=s.trigger,
        reason=s.reason, data_time=min(_at(s.until), newest))) for s in steps]
    versions = []
    for job in started:
        outcome = job_service.follow_to_end(workspace, job.job, wait_for(job.handle))
        if outcome.version is None:
            raise ConflictError(f"demo: {outcome.message}")
        say(f"  {outcome.message} (holdout "
            + ", ".join(f"{k}={v:.3f}" for k, v in sorted(outcome.version.metrics.items()))
            + ")")
        versions.append(outcome.version)
    return versions


__all__ = ["DemoResult", "MlopsError", "build_demo", "sample_config_text"]
