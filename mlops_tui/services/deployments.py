"""Changes to serving state: deploy, rollback and resume, each with its audit row (reading
the state is `deployment_reads`, the environment gate is `gate`).

Every change is compare-and-set against what the operator saw and appends one deployment
event and its audit row in one transaction; history is never rewritten (a rollback is a new
event). The slow checks — the artifact's hash and the environment gate — run before the
write lock is taken; the serving folder is published after the store commits. Nothing here
imports scikit-learn or pandas: deploy and rollback stay fast from a cold start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops_tui.artifacts import blobs
from mlops_tui.core.errors import (
    ConflictError,
    IntegrityError,
    MlopsError,
    NotFoundError,
    UsageError,
)
from mlops_tui.core.models import (
    DeploymentEvent,
    DeploymentKind,
    EnvSnapshot,
    ModelVersion,
)
from mlops_tui.core.names import format_version_id, not_found, parse_version_id, validate_name
from mlops_tui.services.actor import current_actor
from mlops_tui.services.gate import GateResult, apply_gate
from mlops_tui.services.registry import require_version
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import Tx
from mlops_tui.store import data_time as data_time_sql
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import registry as registry_sql
from mlops_tui.store.db import naive_utc

UNSET: Any = object()
NO_REASON = "no reason given"


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeploymentResult:
    event: DeploymentEvent | None  # None: nothing to do
    message: str
    gate: GateResult | None = None
    warnings: tuple[str, ...] = ()
    serving: Any = None  # services.serving.SyncResult after a change, when published


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback would do, computed without writing: for confirmations and the CLI."""

    kind: DeploymentKind
    subject: str
    current: DeploymentEvent | None
    version: ModelVersion | None  # None: nothing to do
    message: str
    undoes: int | None = None  # the event a default rollback reverses


def _subject(kind: DeploymentKind, subject: str) -> str:
    return f"{kind.value}:{subject}"


def _what(kind: DeploymentKind) -> str:
    return "target" if kind is DeploymentKind.ACTIVE else "regime"


def _choose(workspace: Workspace, target: str | None, regime: str | None,
            regime_flag: str = "--regime") -> tuple[DeploymentKind, str]:
    if target is not None and regime is not None:
        raise UsageError(f"give --target or {regime_flag}, not both")
    if regime is not None:
        return DeploymentKind.CHAMPION, validate_name(regime, "regime")
    return DeploymentKind.ACTIVE, validate_name(
        target if target is not None else workspace.config.serving.default_target, "target")


def _reason(reason: str | None, force: bool) -> str:
    text = (reason or "").strip()
    if force and not text:
        raise UsageError("--force needs --reason: say why the check is overridden "
                         "(it is kept in the audit log)")
    if len(text) > 1000:
        raise UsageError("--reason is longer than 1000 characters")
    return text or NO_REASON


def _expected(value: Any) -> Any:
    """Normalise --expect-current: a version id, 'none' (nothing served), or UNSET."""
    if value is UNSET:
        return UNSET
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    return format_version_id(parse_version_id(value))


def _check_expected(kind: DeploymentKind, subject: str, current: DeploymentEvent | None,
                    expected: Any) -> None:
    if expected is UNSET:
        return
    current_id = format_version_id(current.to_version) if current else None
    if expected != current_id:
        raise ConflictError(
            f"{_what(kind)} {subject} is now served by {current_id or 'nothing'}, "
            f"not {expected or 'nothing'}: refresh and try again",
            detail={"current": current_id},
        )


def _known_subjects(tx: Tx, workspace: Workspace, kind: DeploymentKind) -> list[str]:
    known = deployment_sql.subjects(tx, kind)
    if kind is DeploymentKind.ACTIVE:
        return sorted(set(known) | {workspace.config.serving.default_target})
    return sorted(set(known) | set(registry_sql.regime_names(tx)))


def _require_subject(tx: Tx, workspace: Workspace, kind: DeploymentKind, subject: str,
                     *, creating: bool = False) -> None:
    """An unknown target or regime is bad input (exit 2) with a did-you-mean."""
    known = _known_subjects(tx, workspace, kind)
    if subject in known or creating:
        return
    error = not_found(_what(kind), subject, known)
    if kind is DeploymentKind.ACTIVE:
        error = NotFoundError(error.message + "; pass --create-target to start serving a new "
                              "target")
    raise error


def _refuse_collected(tx: Tx, version: ModelVersion) -> None:
    collected_at = deployment_sql.is_collected(tx, version.number)
    if collected_at is not None:
        raise ConflictError(
            f"{version.id}'s weights were removed by 'models gc' on {collected_at:%Y-%m-%d}; "
            "it cannot serve (deploy another version)")


# -- the checks before a change --------------------------------------------------------------


def _verify_artifact(workspace: Workspace, version: ModelVersion, *, action: str,
                     kind: DeploymentKind, subject: str) -> None:
    """Hash the weights before they may serve. A refusal writes exactly one audit row."""
    try:
        path = blobs.resolve_inside(workspace.root, version.artifact.path)
        if workspace.artifacts_root.resolve() not in path.parents:
            raise IntegrityError(
                f"artifact path {version.artifact.path!r} of {version.id} is outside artifacts/")
        blobs.verify(path, version.artifact.sha256)
    except IntegrityError as error:
        refuse(workspace, f"{action}-refused", _subject(kind, subject),
               {"version": version.id, "problem": error.message})
        raise IntegrityError(f"{version.id} failed verification, nothing deployed: "
                             f"{error.message}") from None


def refuse(workspace: Workspace, action: str, subject: str, detail: dict[str, Any]) -> None:
    """Record a refused hostile artifact or path: one audit row, nothing else."""
    try:
        with workspace.store.write("audit-refusal") as tx:
            deployment_sql.append_audit(tx, actor=current_actor(), action=action,
                                        subject=subject, detail=detail)
    except MlopsError:
        pass  # the refusal stands even if the store cannot record it (e.g. read-only)


def drift_state(tx: Tx, workspace: Workspace) -> dict[str, Any]:
    """The drift state at this moment, for the audit row: the newest window's verdict
    (drift, ok or inconclusive, in the drift engine's words), or unknown."""
    found = deployment_sql.drift_at(tx)
    if found is None:
        return {"state": "unknown", "why": "no drift results in the store"}
    window = f"{found['window_start'].isoformat()}/{found['window_end'].isoformat()}"
    if "verdict" in found:
        return {"state": found["verdict"], "regime": found["regime"], "window": window,
                "drift_share": found["drift_share"]}
    verdicts: dict[str, int] = found["verdicts"]
    drifted = sum(n for v, n in verdicts.items() if v.lower().startswith("drift"))
    judged = sum(n for v, n in verdicts.items() if v.lower() != "inconclusive")
    if judged == 0:
        state = "inconclusive"
    else:
        state = "drift" if drifted / judged >= workspace.config.drift.dataset_share else "ok"
    return {"state": state, "regime": found["regime"], "verdicts": verdicts, "window": window}


# -- writing a change ------------------------------------------------------------------------


def checked_data_time(tx: Tx, data_time: datetime | None) -> datetime | None:
    """An event's data time given by the caller (None: the store's newest observation), which
    may not lie after the newest observation: an event cannot act on data not seen yet."""
    if data_time is None:
        return None
    newest = data_time_sql.newest_observation(tx)
    if newest is None or naive_utc(data_time) > newest:
        seen = f"the newest observation is {newest.isoformat()}" if newest else "no observations yet"
        raise UsageError(f"--data-time {data_time.isoformat()} is after the data: {seen}",
                         detail={"data_time": data_time.isoformat()})
    return naive_utc(data_time)


def _append_change(
    tx: Tx, workspace: Workspace, *, kind: DeploymentKind, subject: str,
    current: DeploymentEvent | None, version: ModelVersion, action: str, actor: str,
    reason: str, pinned: bool, detail: dict[str, Any], data_time: datetime | None = None,
) -> DeploymentEvent:
    """The deployment event and its audit row (with the drift state), in the caller's tx."""
    detail = {**detail, "drift": drift_state(tx, workspace)}
    at = checked_data_time(tx, data_time) or data_time_sql.newest_observation(tx)
    seq = deployment_sql.append_event(
        tx, kind=kind, subject=subject,
        from_version=current.to_version if current else None, to_version=version.number,
        action=action, actor=actor, reason=reason, pinned=pinned, detail=detail, data_time=at,
    )
    deployment_sql.append_audit(
        tx, actor=actor, action=action, subject=_subject(kind, subject),
        detail={"from": format_version_id(current.to_version) if current else None,
                "to": version.id, "reason": reason, "pinned": pinned, **detail},
        event_seq=seq, data_time=at,
    )
    return deployment_sql.latest_event(tx, kind, subject)


def _publish(workspace: Workspace, unit: str) -> tuple[Any, list[str]]:
    """Swap the serving folder after a commit; a failure is a warning (the store is right)."""
    from mlops_tui.services import serving

    try:
        result = serving.sync(workspace, unit=unit)
    except (MlopsError, OSError) as error:
        text = getattr(error, "message", None) or str(error)
        return None, [f"serving folder not updated ({text}); the store is right: "
                      "run 'mlops-tui serving reconcile'"]
    return result, [f"serving folder: {p}" for p in result.problems]


def record_deployment(
    workspace: Workspace,
    *,
    kind: DeploymentKind,
    subject: str,
    version_id: str,
    action: str,
    reason: str,
    expect_current: object = UNSET,
    pinned: bool = False,
    detail: dict | None = None,
    publish: bool = True,
    data_time: datetime | None = None,
) -> DeploymentResult:
    """Compare-and-set the target's (or regime's) version, with its audit row, atomically.

    The primitive under deploy and rollback, without their checks: automatic changes (CT,
    the demo) use it directly. `expect_current` is the version id the operator saw (None:
    nothing served yet); a mismatch is a conflict (exit 3) naming what is current now. An
    automatic change (`pinned=False`) to a pinned subject is a conflict too, decided in the
    same transaction: manual beats automatic. With `publish`, the serving folder follows.
    `data_time`: the newest observation time the change acted on (default: the store's).
    """
    what = _what(kind)
    subject = validate_name(subject, what)
    expected = _expected(expect_current)
    actor = current_actor()
    with workspace.store.write(action) as tx:
        version = require_version(tx, version_id)
        current = deployment_sql.current(tx, kind, subject)
        _check_expected(kind, subject, current, expected)
        if current is not None and current.to_version == version.number:
            return DeploymentResult(None, f"{what} {subject} already uses {version.id}")
        if current is not None and current.pinned and not pinned:
            flag = "--target" if kind is DeploymentKind.ACTIVE else "--regime"
            raise ConflictError(
                f"{what} {subject} is pinned to {format_version_id(current.to_version)} by a "
                f"manual change (event #{current.seq}): an automatic {action} does not override "
                f"it; 'mlops-tui ct resume {flag} {subject}' hands it back",
                detail={"pinned": format_version_id(current.to_version)})
        _refuse_collected(tx, version)
        event = _append_change(tx, workspace, kind=kind, subject=subject, current=current,
                               version=version, action=action, actor=actor, reason=reason,
                               pinned=pinned, detail=dict(detail or {}), data_time=data_time)
    label = "champion of" if kind is DeploymentKind.CHAMPION else "active on"
    served, warnings = _publish(workspace, action) if publish else (None, [])
    return DeploymentResult(event, f"{version.id} is now {label} {subject}",
                            warnings=tuple(warnings), serving=served)


@dataclass(frozen=True)
class _Checked:
    """What the pre-checks found, so the write can compare-and-set against it."""

    version: ModelVersion
    current: DeploymentEvent | None
    gate: GateResult | None
    warnings: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


def _commit(workspace: Workspace, *, unit: str, kind: DeploymentKind, subject: str,
            checked: _Checked, expected: Any, reason: str, undoes: int | None = None,
            data_time: datetime | None = None) -> DeploymentResult:
    """The write: CAS against what was seen, event + audit row (pinned), then publish."""
    actor = current_actor()
    version = checked.version
    with workspace.store.write(unit) as tx:
        current = deployment_sql.current(tx, kind, subject)
        if expected is UNSET:  # nobody named a version: compare with what the checks saw
            seen = checked.current
            if (seen.seq if seen else None) != (current.seq if current else None):
                now = format_version_id(current.to_version) if current else "nothing"
                raise ConflictError(
                    f"{_what(kind)} {subject} changed while checking (now {now}, "
                    f"event #{current.seq if current else '-'}): refresh and try again",
                    detail={"current": now if current else None})
        else:
            _check_expected(kind, subject, current, expected)
        if current is not None and current.to_version == version.number:
            return DeploymentResult(None, f"{_what(kind)} {subject} already uses {version.id}; "
                                    "nothing to do", checked.gate, tuple(checked.warnings))
        _refuse_collected(tx, version)  # versions are never deleted, but gc may take weights
        detail = dict(checked.detail)
        if undoes is not None:
            detail["undoes"] = undoes
        action = "promote" if unit == "deploy" and kind is DeploymentKind.CHAMPION else unit
        event = _append_change(tx, workspace, kind=kind, subject=subject, current=current,
                               version=version, action=action, actor=actor, reason=reason,
                               pinned=True, detail=detail, data_time=data_time)
    served, publish_warnings = _publish(workspace, unit)
    flag = "--target" if kind is DeploymentKind.ACTIVE else "--regime"
    if unit == "rollback":
        previous = format_version_id(event.from_version) if event.from_version else "-"
        message = f"{_what(kind)} {subject} rolled back: {previous} -> {version.id}"
    elif kind is DeploymentKind.ACTIVE:
        message = f"{version.id} is now active on {subject}"
    else:
        message = f"{version.id} is now champion of {subject}"
    message += f" (pinned until 'mlops-tui ct resume {flag} {subject}')"
    return DeploymentResult(event, message, checked.gate,
                            tuple(checked.warnings + publish_warnings), served)


def _check_change(workspace: Workspace, *, unit: str, kind: DeploymentKind, subject: str,
                  version: ModelVersion, env: EnvSnapshot | None,
                  current: DeploymentEvent | None, force: bool) -> _Checked:
    """Regime match, artifact hash and environment gate, before any lock is taken."""
    warnings: list[str] = []
    detail: dict[str, Any] = {"forced": force}
    if kind is DeploymentKind.CHAMPION and version.regime != subject:
        if not force:
            raise ConflictError(
                f"{version.id} was trained for regime {version.regime}, not {subject}: refusing "
                f"to make it {subject}'s champion (pass --force --reason to override)",
                detail={"version_regime": version.regime})
        warnings.append(f"forced: {version.id} was trained for {version.regime}, "
                        f"now champion of {subject}")
        detail["regime_mismatch"] = {"trained_for": version.regime}
    _verify_artifact(workspace, version, action=unit, kind=kind, subject=subject)
    gate = None
    if kind is DeploymentKind.ACTIVE:
        gate, gate_warnings = apply_gate(workspace, version, env, force)
        warnings.extend(gate_warnings)
        detail["gate"] = {"environment": gate.environment, "verdict": gate.verdict.label,
                          "reasons": gate.diff.reasons}
    return _Checked(version, current, gate, warnings, detail)


# -- deploy, rollback, resume ----------------------------------------------------------------


def deploy(
    workspace: Workspace,
    version_id: str,
    *,
    target: str | None = None,
    champion_of: str | None = None,
    reason: str | None = None,
    expect_current: Any = UNSET,
    force: bool = False,
    create_target: bool = False,
    data_time: datetime | None = None,
) -> DeploymentResult:
    """Make `version_id` the active version of a target (default: [serving] default_target)
    or the champion of a regime; pins it until `ct resume`.

    Refused (exit 3): an incompatible environment or a regime the version was not trained
    for, unless `force` with a reason; a stale `expect_current`. Exit 5: weights that fail
    their hash (one audit row records the refusal). Deploying what already serves: no-op.
    """
    kind, subject = _choose(workspace, target, champion_of, "--champion-of")
    reason_text = _reason(reason, force)
    expected = _expected(expect_current)
    with workspace.store.read() as tx:
        checked_data_time(tx, data_time)  # refused before the slow checks
        version = require_version(tx, version_id)
        current = deployment_sql.current(tx, kind, subject)
        _require_subject(tx, workspace, kind, subject,
                         creating=create_target or current is not None)
        env = registry_sql.get_env(tx, version.env_hash)
        _check_expected(kind, subject, current, expected)
        if current is not None and current.to_version == version.number:
            return DeploymentResult(None, f"{_what(kind)} {subject} already uses {version.id}; "
                                    "nothing to do")
        _refuse_collected(tx, version)
    checked = _check_change(workspace, unit="deploy", kind=kind, subject=subject,
                            version=version, env=env, current=current, force=force)
    return _commit(workspace, unit="deploy", kind=kind, subject=subject, checked=checked,
                   expected=expected, reason=reason_text, data_time=data_time)


def plan_rollback(
    workspace: Workspace, *, target: str | None = None, regime: str | None = None,
    to: str | None = None,
) -> RollbackPlan:
    """Which version a rollback would restore, without writing anything.

    Default: the version that served before the subject's latest change. When that change
    was itself a rollback there is nothing to do, so repeating a rollback (a retried script,
    two operators) never walks further back by accident; name a version with `to` for that.
    """
    return _plan_rollback(workspace, target=target, regime=regime, to=to)[0]


def _plan_rollback(
    workspace: Workspace, *, target: str | None, regime: str | None, to: str | None,
) -> tuple[RollbackPlan, EnvSnapshot | None]:
    """The plan and the chosen version's environment, in one read."""
    kind, subject = _choose(workspace, target, regime)
    with workspace.store.read() as tx:
        latest = deployment_sql.latest_event(tx, kind, subject)
        current = deployment_sql.current(tx, kind, subject)
        if latest is None:
            _require_subject(tx, workspace, kind, subject)
            raise ConflictError(f"{_what(kind)} {subject} has no deployment history: "
                                "nothing to roll back")
        if to is not None:
            version = require_version(tx, to)
            undoes = None
        elif latest.action == "rollback":
            return RollbackPlan(
                kind, subject, current, None,
                f"{_what(kind)} {subject} was already rolled back to "
                f"{format_version_id(latest.to_version)} (event #{latest.seq}); nothing to do "
                "(name a version with --to to go further back)"), None
        elif latest.from_version is None:
            raise ConflictError(
                f"{_what(kind)} {subject} has no earlier version to roll back to: "
                f"{format_version_id(latest.to_version)} is the only one it has had "
                f"(event #{latest.seq})")
        else:
            version = require_version(tx, format_version_id(latest.from_version))
            undoes = latest.seq
        if current is not None and current.to_version == version.number:
            return RollbackPlan(kind, subject, current, None,
                                f"{_what(kind)} {subject} already uses {version.id}; "
                                "nothing to do"), None
        _refuse_collected(tx, version)
        env = registry_sql.get_env(tx, version.env_hash)
    return RollbackPlan(kind, subject, current, version,
                        f"{_what(kind)} {subject}: {format_version_id(current.to_version)} "
                        f"-> {version.id}", undoes), env


def rollback(
    workspace: Workspace,
    *,
    target: str | None = None,
    regime: str | None = None,
    to: str | None = None,
    reason: str | None = None,
    expect_current: Any = UNSET,
    force: bool = False,
    data_time: datetime | None = None,
) -> DeploymentResult:
    """Restore an earlier version of a target (or an earlier champion of a regime) as a new
    event, with the same checks as deploy; pins it until `ct resume`. See plan_rollback."""
    reason_text = _reason(reason, force)
    expected = _expected(expect_current)
    if data_time is not None:
        with workspace.store.read() as tx:
            checked_data_time(tx, data_time)  # refused before the slow checks
    plan, env = _plan_rollback(workspace, target=target, regime=regime, to=to)
    _check_expected(plan.kind, plan.subject, plan.current, expected)
    if plan.version is None:
        return DeploymentResult(None, plan.message)
    checked = _check_change(workspace, unit="rollback", kind=plan.kind, subject=plan.subject,
                            version=plan.version, env=env, current=plan.current, force=force)
    return _commit(workspace, unit="rollback", kind=plan.kind, subject=plan.subject,
                   checked=checked, expected=expected, reason=reason_text, undoes=plan.undoes,
                   data_time=data_time)


@dataclass(frozen=True)
class ResumeResult:
    changed: bool
    message: str


def resume(workspace: Workspace, *, target: str | None = None, regime: str | None = None,
           reason: str | None = None, data_time: datetime | None = None) -> ResumeResult:
    """Hand a pinned target (or regime) back to continuous training: `ct resume`."""
    kind, subject = _choose(workspace, target, regime)
    reason_text = _reason(reason, False)
    actor = current_actor()
    with workspace.store.write("resume") as tx:
        current = deployment_sql.current(tx, kind, subject)
        if current is None:
            _require_subject(tx, workspace, kind, subject)
            return ResumeResult(False, f"{_what(kind)} {subject} has never been deployed; "
                                "nothing to resume")
        if not current.pinned:
            return ResumeResult(False, f"{_what(kind)} {subject} is not pinned; nothing to do")
        at = checked_data_time(tx, data_time)
        deployment_sql.append_pin_event(tx, kind=kind, subject=subject, event_seq=current.seq,
                                        pinned=False, actor=actor, reason=reason_text,
                                        data_time=at)
        deployment_sql.append_audit(
            tx, actor=actor, action="resume", subject=_subject(kind, subject),
            detail={"reason": reason_text, "version": format_version_id(current.to_version),
                    "pinned_by_event": current.seq}, data_time=at)
    return ResumeResult(True, f"{_what(kind)} {subject} is no longer pinned: continuous "
                        "training may change it again")
