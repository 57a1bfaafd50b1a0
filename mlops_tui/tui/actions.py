"""The dashboard's dangerous actions: retrain, deploy, rollback, cancel job.

Each is planned in a worker (what will change, the environment verdict of the version that
would serve), confirmed by the operator, then run through the SAME service function as its
CLI verb, so it leaves the same events and audit rows. Nothing here touches the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_tui.core.errors import ConflictError, MlopsError, UsageError
from mlops_tui.services.workspace import Workspace
from mlops_tui.tui.text import VERDICT_SYMBOLS, stamp

REASON = "requested from the dashboard"


@dataclass(frozen=True)
class Confirmation:
    """What the operator is asked: a title, the facts, and the confirm button's words."""

    title: str
    lines: tuple[str, ...]
    confirm_label: str
    warning: str = ""  # e.g. an incompatible environment verdict, shown above the buttons


@dataclass(frozen=True)
class ActionContext:
    """What the operator has selected where the key was pressed."""

    regime: str | None = None
    version_id: str | None = None  # the version a deploy would make active
    rollback_to: str | None = None  # a history row's version (else: the previous one)
    target: str | None = None
    job_id: str | None = None
    refusal: str | None = None  # why the selection here cannot take the action


@dataclass(frozen=True)
class ActionOutcome:
    message: str
    handle: Any = None  # a started job's runner handle, polled so its process is reaped


@dataclass(frozen=True)
class ActionPlan:
    """A confirmed plan runs `perform(workspace)`; `action` is the binding id."""

    action: str
    confirmation: Confirmation
    perform: Callable[[Workspace], ActionOutcome] = field(repr=False)


def plan_action(workspace: Workspace, action: str, context: ActionContext) -> ActionPlan:
    planners = {"retrain": plan_retrain, "deploy": plan_deploy, "rollback": plan_rollback,
                "cancel-job": plan_cancel}
    if context.refusal:
        raise UsageError(context.refusal)
    return planners[action](workspace, context)


# -- retrain ---------------------------------------------------------------------------------


def plan_retrain(workspace: Workspace, context: ActionContext) -> ActionPlan:
    from mlops_tui.services.deployment_reads import serving_state
    from mlops_tui.services.retrain import RetrainRequest, start_retrain

    state = serving_state(workspace)
    regime = context.regime
    if regime is None:
        raise UsageError("select a regime first (a regime row in :overview, a version in "
                         ":models, or :drift REGIME)")
    champion = state.champions.get(regime)
    lines = (
        f"regime      {regime}",
        f"runner      {workspace.config.runner.kind} (from mlops.toml)",
        "data        every labelled row of the regime ingested so far",
        f"parent      {'v' + str(champion.to_version) if champion else 'none (first model)'}",
        "",
        "The job starts now and registers a new version when it succeeds;",
        "follow it in :jobs. Serving does not change.",
    )

    def perform(ws: Workspace) -> ActionOutcome:
        started = start_retrain(ws, RetrainRequest(regime=regime, reason=REASON))
        return ActionOutcome(
            f"job {started.job.short_id} started on the {started.runner} runner "
            f"(retrain {regime})", started.handle)

    return ActionPlan("retrain", Confirmation(f"Retrain regime {regime}?", lines, "Retrain"),
                      perform)


# -- deploy and rollback -----------------------------------------------------------------------


def environment_verdict(workspace: Workspace, version_id: str) -> tuple[str, str, list[str]]:
    """(verdict word, dialog line, reasons) of the deploy gate for `version_id`: its
    environment against the serving one ([serving] environment), as deploy will judge it."""
    from mlops_tui.services.gate import check_gate

    try:
        gate = check_gate(workspace, version_id)
    except MlopsError as error:
        return "unknown", f"environment {version_id}: ? unknown ({error.message})", []
    word = gate.verdict.label
    line = (f"environment {version_id} → {gate.environment}: {VERDICT_SYMBOLS[word]} "
            f"{word.upper()} ({len(gate.diff.changes)} package changes)")
    return word, line, list(gate.diff.reasons)


def _gate_warning(verdict: str, version_id: str) -> str:
    if verdict != "incompatible":
        return ""
    return (f"✗ {version_id} is INCOMPATIBLE with the serving environment: the gate will "
            "refuse it (only the CLI's --force --reason overrides)")


def _active_version(workspace: Workspace, target: str) -> str | None:
    from mlops_tui.services.deployment_reads import serving_state

    event = serving_state(workspace).active.get(target)
    return f"v{event.to_version}" if event else None


def plan_deploy(workspace: Workspace, context: ActionContext) -> ActionPlan:
    from mlops_tui.services.deployments import deploy
    from mlops_tui.services.registry import show_version

    if context.version_id is None:
        raise UsageError("select a version first (in :models, :lineage, or a regime row "
                         "in :overview for its champion)")
    target = context.target or workspace.config.serving.default_target
    version = show_version(workspace, context.version_id).version
    current = _active_version(workspace, target)
    if current == version.id:
        raise ConflictError(f"{version.id} is already active on {target}: nothing to do")
    verdict, verdict_line, reasons = environment_verdict(workspace, version.id)
    metric = workspace.config.pipeline.metric
    value = version.metrics.get(metric)
    lines = (
        f"target      {target}: {current or 'nothing'} → {version.id}",
        f"version     {version.id}, regime {version.regime}, {version.trigger.value}, "
        f"{stamp(version.created_at)}"
        + (f", {metric}={value:.3f}" if value is not None else ""),
        verdict_line,
        *(f"  because {reason}" for reason in reasons[:3]),
        "",
        f"A manual deploy pins {target} until 'mlops-tui ct resume'.",
    )

    def perform(ws: Workspace) -> ActionOutcome:
        result = deploy(ws, version.id, target=target, reason=REASON,
                        expect_current=current)
        return ActionOutcome(_with_warnings(result))

    return ActionPlan("deploy", Confirmation(
        f"Deploy {version.id} to {target}?", lines, f"Deploy {version.id}",
        _gate_warning(verdict, version.id)), perform)


def plan_rollback(workspace: Workspace, context: ActionContext) -> ActionPlan:
    from mlops_tui.services import deployments

    target = context.target or workspace.config.serving.default_target
    plan = deployments.plan_rollback(workspace, target=target, to=context.rollback_to)
    if plan.version is None:
        raise ConflictError(plan.message)
    current = f"v{plan.current.to_version}" if plan.current else None
    destination = plan.version.id
    verdict, verdict_line, reasons = environment_verdict(workspace, destination)
    lines = (
        verdict_line,  # the target version's environment verdict comes first
        *(f"  because {reason}" for reason in reasons[:3]),
        "",
        f"target      {target}: {current or 'nothing'} → {destination}",
        f"version     {destination}, regime {plan.version.regime}, "
        f"{plan.version.trigger.value}, {stamp(plan.version.created_at)}",
        "recorded    as a new deployment event, with its audit row",
        f"pin         {target} stays on {destination} until 'mlops-tui ct resume'",
    )

    def perform(ws: Workspace) -> ActionOutcome:
        result = deployments.rollback(ws, target=target, to=context.rollback_to, reason=REASON,
                                      expect_current=current)
        return ActionOutcome(_with_warnings(result))

    return ActionPlan("rollback", Confirmation(
        f"Roll {target} back to {destination}?", lines, f"Roll back to {destination}",
        _gate_warning(verdict, destination)), perform)


def _with_warnings(result: Any) -> str:
    warnings = "; ".join(getattr(result, "warnings", ()) or ())
    return result.message + (f" (warning: {warnings})" if warnings else "")


# -- cancel a job ------------------------------------------------------------------------------


def plan_cancel(workspace: Workspace, context: ActionContext) -> ActionPlan:
    from mlops_tui.services.jobs import cancel_job, get_job, list_jobs

    if context.job_id is not None:
        job = get_job(workspace, context.job_id)
    else:
        running = list_jobs(workspace, unfinished_only=True, limit=1)
        if not running:
            raise ConflictError("no running job to cancel")
        job = running[0]
    if not job.state.unfinished:
        raise ConflictError(f"job {job.short_id} is already {job.state.value}")
    lines = (
        f"job         {job.id}",
        f"regime      {job.regime}, {job.runner} runner, {job.state.value} "
        f"since {stamp(job.state_at)}",
        "",
        "Its process (or container) is stopped; no version is registered.",
    )

    def perform(ws: Workspace) -> ActionOutcome:
        cancelled = cancel_job(ws, job.id)
        return ActionOutcome(f"job {cancelled.short_id} {cancelled.state.value}")

    return ActionPlan("cancel-job", Confirmation(
        f"Cancel job {job.short_id} ({job.regime})?", lines, "Cancel the job"), perform)
