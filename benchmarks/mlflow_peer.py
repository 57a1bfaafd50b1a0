"""MLflow model-registry side of the registry benchmark (run with the MLflow venv's python).

Uses only the standard library and mlflow; it never imports mlops_tui. Subcommands:

- ``populate``: register versions through ``MlflowClient`` (one registered model per regime,
  ``create_model_version`` per version, tags shaped like mlops-tui's columns) up to a total;
- ``op``: one operation, printed as one JSON document on stdout (timed from outside as a
  cold process, like an ``mlops-tui ... --json`` command);
- ``warm``: in-process timings of point lookups and filtered searches after a warm-up.

Version numbering matches mlops-tui's builder: global number n belongs to regime
``REGIMES[(n - 1) % 5]`` and is that registered model's version ``(n - 1) // 5 + 1``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

REGIMES = ("sedan", "suv", "pickup", "van", "coupe")
CHAIN = 100  # as in build_store.py: parent chains restart every CHAIN versions of a regime


def _client(db: Path):
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow import MlflowClient

    uri = f"sqlite:///{db.resolve()}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def model_of(number: int) -> tuple[str, int]:
    """(registered model name, its version number) for mlops-tui's global number."""
    return REGIMES[(number - 1) % len(REGIMES)], (number - 1) // len(REGIMES) + 1


def parent_of(version: int) -> int | None:
    """The parent of a registered model's `version`, chained like mlops-tui's builder."""
    if version == 1:
        return None
    if version == 2:
        return 1
    return 2 if (version - 3) % CHAIN == 0 else version - 1


def _trigger(number: int) -> str:
    draw = (number * 2654435761) % 4294967296 % 100
    for bound, name in ((40, "drift"), (60, "schedule"), (72, "code-change"),
                        (84, "dependency-change"), (95, "manual")):
        if draw < bound:
            return name
    return "regime-new"


def _tags(number: int) -> dict[str, str]:
    """Tags carrying what mlops-tui keeps in columns (metrics live in runs in MLflow)."""
    h = (number * 2654435761) % 4294967296
    docker = (number * 40503) % 65536 % 10 < 6
    name, version = model_of(number)
    tags = {
        "trigger": _trigger(number),
        "runner": "docker" if docker else "local",
        "parent": f"{name}/{parent_of(version)}" if parent_of(version) else "",
        "env_hash": f"{h:064x}"[-64:],
        "code_hash": f"{h * 7:064x}"[-64:],
        "train_snapshot": f"{h * 11:064x}"[-64:],
        "holdout_snapshot": f"{h * 13:064x}"[-64:],
        "metrics": json.dumps({"mae": 0.2 + (h % 997) / 2000, "r2": 0.8 + (h % 991) / 5300,
                               "rmse": 0.25 + (h % 997) / 1600}, sort_keys=True),
    }
    if docker:
        tags["image"] = f"mlops-tui-trainer:{number // 500:012x}"
        tags["job_id"] = f"{h:032x}"
    return tags


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM model_versions").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def populate(db: Path, upto: int, source: str) -> dict:
    """Register versions until the registry holds `upto`; report the per-version cost."""
    from mlflow.exceptions import MlflowException

    client = _client(db)
    for name in REGIMES:
        try:
            client.create_registered_model(name, description=f"regime {name}")
        except MlflowException:
            pass  # already there from an earlier, smaller run
    start_count = _count(db)
    started = time.perf_counter()
    for number in range(start_count + 1, upto + 1):
        name, _ = model_of(number)
        client.create_model_version(name, source=source, tags=_tags(number),
                                    description=f"benchmark version v{number}")
    seconds = time.perf_counter() - started
    added = upto - start_count
    return {"versions": _count(db), "added": added, "seconds": seconds,
            "per_version_ms": 1000 * seconds / added if added else None}


def _doc(version) -> dict:
    return {"name": version.name, "version": version.version,
            "created": version.creation_timestamp, "source": version.source,
            "run_id": version.run_id, "status": version.status,
            "description": version.description, "tags": dict(version.tags)}


def run_op(client, op: str, *, number: int, max_results: int, regime: str,
           trigger: str) -> dict:
    """One registry operation; returns a JSON-ready document."""
    if op == "list":
        found = client.search_model_versions(max_results=max_results)
        return {"total": len(found), "versions": [_doc(v) for v in found]}
    if op == "filter":
        found = client.search_model_versions(
            filter_string=f"name = '{regime}' AND tags.trigger = '{trigger}'",
            max_results=max_results)
        return {"total": len(found), "versions": [_doc(v) for v in found]}
    if op == "get":
        return _doc(client.get_model_version(*model_of(number)))
    if op == "ancestry":  # no lineage in MLflow: walk the parent tag, one lookup a step
        chain, name, version = [], *model_of(number)
        while True:
            found = client.get_model_version(name, str(version))
            chain.append(_doc(found))
            parent = found.tags.get("parent")
            if not parent:
                return {"chain": chain}
            name, version = parent.split("/")
    raise SystemExit(f"unknown op {op}")


def warm(db: Path, runs: int, *, number: int, regime: str, trigger: str) -> dict:
    """Median and p95 (ms) of in-process lookups after a warm-up."""
    client = _client(db)
    name, version = model_of(number)
    cases = {
        "get_model_version": lambda: client.get_model_version(name, str(version)),
        "search filtered (50)": lambda: client.search_model_versions(
            filter_string=f"name = '{regime}' AND tags.trigger = '{trigger}'", max_results=50),
        "search by name (50)": lambda: client.search_model_versions(
            filter_string=f"name = '{regime}'", max_results=50),
    }
    result = {}
    for label, call in cases.items():
        for _ in range(max(5, runs // 10)):
            call()
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            call()
            samples.append(1000 * (time.perf_counter() - started))
        samples.sort()
        result[label] = {"median_ms": statistics.median(samples),
                         "p95_ms": samples[max(0, int(0.95 * len(samples)) - 1)]}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pop = sub.add_parser("populate")
    pop.add_argument("--db", type=Path, required=True)
    pop.add_argument("--upto", type=int, required=True)
    pop.add_argument("--source", required=True)
    for name in ("op", "warm"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--db", type=Path, required=True)
        cmd.add_argument("--number", type=int, default=1)
        cmd.add_argument("--regime", default=REGIMES[1])
        cmd.add_argument("--trigger", default="drift")
        if name == "op":
            cmd.add_argument("op", choices=("list", "filter", "get", "ancestry"))
            cmd.add_argument("--max-results", type=int, default=200)
        else:
            cmd.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    if args.command == "populate":
        document = populate(args.db, args.upto, args.source)
    elif args.command == "op":
        document = run_op(_client(args.db), args.op, number=args.number,
                          max_results=args.max_results, regime=args.regime,
                          trigger=args.trigger)
    else:
        import mlflow

        document = warm(args.db, args.runs, number=args.number, regime=args.regime,
                        trigger=args.trigger) | {"mlflow": mlflow.__version__}
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
