"""Worker processes for the multi-process tests: `python tests/proc_worker.py COMMAND ...`.

Each command prints one JSON line on stdout when it is ready or done, so the test can
coordinate with it without sleeping blindly.

  hold-read WS SECONDS        hold a shared read unit for SECONDS
  hold-write WS SECONDS       hold an exclusive write unit for SECONDS
  read-once WS                time one read unit
  deploy-loop WS TARGET N     wait for "go" on stdin, then N deployments alternating v1/v2
  register WS REGIME ARTIFACT CODE_DIR
                              register a prepared skops artifact (the fault hook may kill us)
"""

from __future__ import annotations

import json
import os
import sys
import time

from mlops_tui.core.models import DeploymentKind
from mlops_tui.services.workspace import open_workspace


def say(**document) -> None:
    print(json.dumps(document), flush=True)


def main(command: str, root: str, *args: str) -> None:
    workspace = open_workspace(root, command=f"proc_worker {command}")
    store = workspace.store
    if command == "hold-read":
        with store.read() as tx:
            tx.scalar("SELECT count(*) FROM model_versions")
            say(ready=True, pid=os.getpid())
            time.sleep(float(args[0]))
        say(done=True)
    elif command == "hold-write":
        with store.write("hold") as tx:
            tx.execute("INSERT INTO regimes VALUES ('held', '', now()) ON CONFLICT DO NOTHING")
            say(ready=True, pid=os.getpid())
            time.sleep(float(args[0]))
        say(done=True)
    elif command == "read-once":
        started = time.monotonic()
        with store.read() as tx:
            versions = tx.scalar("SELECT count(*) FROM model_versions")
        say(elapsed=time.monotonic() - started, versions=versions)
    elif command == "deploy-loop":
        from mlops_tui.services.deployments import record_deployment

        target, count = args[0], int(args[1])
        say(ready=True, pid=os.getpid())
        assert sys.stdin.readline().strip() == "go"
        spans = []
        for index in range(count):
            started = time.time()
            result = record_deployment(
                workspace, kind=DeploymentKind.ACTIVE, subject=target,
                version_id="v1" if index % 2 == 0 else "v2", action="deploy",
                reason=f"{target} #{index}")
            assert result.event is not None, result.message
            spans.append((started, time.time()))
        say(done=True, first=spans[0][0], last=spans[-1][1], count=len(spans))
    elif command == "register":
        from pathlib import Path

        from mlops_tui.services.environments import capture_host
        from mlops_tui.services.registry import Registration, register_version

        regime, artifact, code_dir = args
        version = register_version(workspace, Registration(
            regime=regime, artifact_file=Path(artifact), code_dir=Path(code_dir),
            environment=capture_host()))
        say(version=version.id)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(*sys.argv[1:])
