"""Lineage as a tree: a version's inputs (code, weights, environment, data, image, job) and
its ancestry, with text, JSON and Graphviz renderings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_tui.core.models import CodeSnapshot, DataSnapshot, EnvSnapshot, ModelVersion
from mlops_tui.core.text import printable


@dataclass(frozen=True)
class LineageNode:
    kind: str  # version, code, weights, environment, data, image, job
    id: str
    label: str
    relation: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    children: tuple[LineageNode, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "id": self.id, "label": self.label, "relation": self.relation,
            "attributes": self.attributes, "children": [c.to_dict() for c in self.children],
        }


def _short(value: str | None, width: int = 12) -> str:
    return (value or "")[:width]


def _inputs(
    version: ModelVersion,
    envs: dict[str, EnvSnapshot],
    codes: dict[str, CodeSnapshot],
    snapshots: dict[str, DataSnapshot],
) -> list[LineageNode]:
    nodes = []
    code = codes.get(version.code_hash)
    code_label = f"code {_short(version.code_hash)}"
    if code is not None:
        code_label += f" ({len(code.files)} files"
        if code.git_commit:
            code_label += f", git {code.git_commit[:10]}{' dirty' if code.git_dirty else ''}"
        code_label += ")"
    nodes.append(LineageNode(
        "code", version.code_hash, code_label, "code",
        {"files": [f.path for f in code.files] if code else [],
         "git_commit": code.git_commit if code else None,
         "git_dirty": code.git_dirty if code else None}))
    nodes.append(LineageNode(
        "weights", version.artifact.sha256,
        f"weights sha256 {_short(version.artifact.sha256)} ({version.artifact.size:,} bytes, "
        f"{version.artifact.format})", "weights",
        {"sha256": version.artifact.sha256, "size": version.artifact.size,
         "path": version.artifact.path, "format": version.artifact.format}))
    env = envs.get(version.env_hash)
    nodes.append(LineageNode(
        "environment", version.env_hash,
        f"environment {_short(version.env_hash)}" + (f" ({env.summary()})" if env else ""),
        "environment",
        {"python": env.python_version if env else None,
         "implementation": env.implementation if env else None,
         "platform": env.platform if env else None,
         "packages": len(env.packages) if env else None,
         "source": env.source if env else None}))
    for relation, fingerprint in (("train", version.train_snapshot),
                                  ("holdout", version.holdout_snapshot)):
        if fingerprint is None:
            continue
        snap = snapshots.get(fingerprint)
        label = f"{relation} data {_short(fingerprint)}"
        attributes: dict[str, Any] = {"fingerprint": fingerprint}
        if snap is not None:
            label += f" ({snap.rows:,} rows, regime {snap.regime or '-'})"
            attributes |= {
                "rows": snap.rows, "regime": snap.regime,
                "time_min": snap.time_min.isoformat() if snap.time_min else None,
                "time_max": snap.time_max.isoformat() if snap.time_max else None,
            }
        nodes.append(LineageNode("data", fingerprint, label, relation, attributes))
    if version.image:
        nodes.append(LineageNode("image", version.image, f"image {_short(version.image, 19)}",
                                 "image"))
    if version.job_id:
        nodes.append(LineageNode("job", version.job_id, f"job {version.job_id[:8]}", "job",
                                 {"runner": version.runner}))
    return nodes


def build_lineage(
    chain: list[ModelVersion],
    envs: dict[str, EnvSnapshot],
    codes: dict[str, CodeSnapshot],
    snapshots: dict[str, DataSnapshot],
) -> LineageNode:
    """`chain` is the version followed by its ancestors (nearest first)."""
    node: LineageNode | None = None
    for version in reversed(chain):
        children = _inputs(version, envs, codes, snapshots)
        if node is not None:
            children.append(LineageNode(node.kind, node.id, node.label, "parent",
                                        node.attributes, node.children))
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(version.metrics.items()))
        node = LineageNode(
            "version", version.id,
            f"{version.id} regime {version.regime}, {version.trigger.value}, {version.runner}"
            + (f", {metrics}" if metrics else ""),
            "",
            {"regime": version.regime, "trigger": version.trigger.value,
             "runner": version.runner, "metrics": version.metrics,
             "created_at": version.created_at.isoformat()},
            tuple(children),
        )
    if node is None:
        raise ValueError("empty lineage chain")
    return node


def walk(node: LineageNode, depth: int = 0):
    yield depth, node
    for child in node.children:
        yield from walk(child, depth + 1)


def to_text_lines(root: LineageNode) -> list[str]:
    """An indented tree with box-drawing guides."""
    lines: list[str] = []

    def emit(node: LineageNode, prefix: str, last: bool, top: bool) -> None:
        relation = f"[{node.relation}] " if node.relation and node.relation != "parent" else (
            "parent " if node.relation == "parent" else "")
        if top:
            lines.append(node.label)
        else:
            lines.append(f"{prefix}{'└── ' if last else '├── '}{relation}{node.label}")
        child_prefix = prefix if top else prefix + ("    " if last else "│   ")
        for index, child in enumerate(node.children):
            emit(child, child_prefix, index == len(node.children) - 1, False)

    emit(root, "", True, True)
    return lines


def to_dot(root: LineageNode) -> str:
    """Graphviz source: one node per distinct input, edges labelled by relation."""
    shapes = {"version": "box", "code": "note", "weights": "cylinder", "environment": "component",
              "data": "folder", "image": "box3d", "job": "ellipse"}
    nodes: dict[str, LineageNode] = {}
    edges: set[tuple[str, str, str]] = set()

    def visit(node: LineageNode) -> None:
        nodes[node.key] = node
        for child in node.children:
            edges.add((child.key, node.key, child.relation or child.kind))
            visit(child)

    visit(root)

    def quote(text: str) -> str:  # control characters as visible escapes, then DOT-quoted
        return '"' + printable(text).replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = ["digraph lineage {", "  rankdir=LR;"]
    for key, node in sorted(nodes.items()):
        out.append(f"  {quote(key)} [label={quote(node.label)}, shape={shapes.get(node.kind, 'box')}];")
    for source, target, relation in sorted(edges):
        out.append(f"  {quote(source)} -> {quote(target)} [label={quote(relation)}];")
    out.append("}")
    return "\n".join(out) + "\n"
