"""Terminal injection: every stored or outside string reaches the terminal as text.

A hostile corpus (a window-title OSC, a clear-screen CSI, an OSC 8 hyperlink, a CSI opened
by the C1 byte 0x9b, bidi overrides and isolates, Rich markup, NUL, a lone carriage return)
is stored through the real CLI wherever a string can be stored: deploy, rollback and
`ct resume` reasons, and a real local-runner job whose pipeline prints it and raises it.
Every command that shows it must print the visible escape (`\\x1b`, `\\u202e`) and never the
raw character; `--json` must give the stored value back exactly. The dashboard is driven
through Textual's Pilot on the same workspace and its rendered screen checked the same
way, with no markup interpreted (no hyperlink in the rendered segments).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from training_helpers import (
    WRAPPER_HEADER,
    base_workspace_root,
    copy_workspace,
    install_pipeline,
    wait_until,
)
from tui_helpers import clean_terminal_environment, make_app, screen_text, settle

from mlops_tui.cli.jobs_cmd import LogLines
from mlops_tui.core.text import printable
from mlops_tui.services.workspace import Workspace
from mlops_tui.tui.text import plain_text

# What a terminal obeys: a title change, a screen clear, a hyperlink (OSC 8 with ST), a C1
# CSI, right-to-left override and isolate, and a lone CR that overwrites the line.
HOSTILE = ("\x1b]0;pwned\x07" "\x1b[2J" "\x1b]8;;http://x\x1b\\here\x1b]8;;\x1b\\"
           "\x9b31m" "\u202eevil\u202c" "\u2066iso\u2069" " over\rwrite")
MARKUP = "[link=http://x]click[/link] [bold red]loud[/bold red]"
HOSTILE_NUL = HOSTILE + " " + MARKUP + " nul\x00"  # argv cannot carry NUL: a job can
RAW = ("\x1b", "\x9b", "\x07", "\x00", "\u202e", "\u202c", "\u2066", "\u2069", "\r")
VISIBLE = ("\\x1b]0;pwned\\x07", "\\x1b[2J", "\\x9b31m", "\\u202eevil\\u202c",
           "\\u2066iso\\u2069", "over\\rwrite")


def assert_text_only(text: str, *visible: str) -> None:
    """No raw control or bidi character in `text`; each of `visible` shown literally."""
    leaked = sorted({repr(c) for c in RAW if c in text})
    assert not leaked, f"raw {', '.join(leaked)} reached the terminal:\n{text!r}"
    for fragment in visible:
        assert fragment in text, f"{fragment!r} not shown:\n{text}"


def cli(*args: str, workspace: Workspace | Path) -> tuple[int, str, str]:
    """The real CLI; output decoded exactly (no newline translation: a CR stays a CR)."""
    root = workspace.root if isinstance(workspace, Workspace) else workspace
    done = subprocess.run(
        [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(root), *args],
        capture_output=True, timeout=180, check=False, cwd=root.parent,
        env=dict(os.environ) | {"COLUMNS": "1000"})  # wide: no cell is wrapped mid-escape
    return done.returncode, done.stdout.decode(), done.stderr.decode()


# -- the pure function -----------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
    ("\x1b[2J", "\\x1b[2J"),
    ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "\\x1b]8;;http://x\\x1b\\link\\x1b]8;;\\x1b\\"),
    ("\x9b2J", "\\x9b2J"),
    ("\x85next line", "\\x85next line"),
    ("a\x7fb", "a\\x7fb"),
    ("nul\x00", "nul\\x00"),
    ("\u202eevil\u202c", "\\u202eevil\\u202c"),
    ("\u202a\u202b\u202d", "\\u202a\\u202b\\u202d"),
    ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),
    ("over\rwrite", "over\\rwrite"),
    ("two\nlines\tand tab", "two\\nlines\\tand tab"),
    ("bad \udcff byte", "bad \\udcff byte"),
])
def test_printable_shows_every_control_character_as_an_escape(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert printable(shown) == shown  # escaping twice changes nothing


def test_printable_leaves_ordinary_text_alone() -> None:
    for text in ("plain", "[link=http://x]brackets stay[/link]", "naïve – ≥ 2 ✓ ▲ 日本語 مرحبا",
                 "emoji 🙂", "C:\\path\\x1b is backslashes", ""):
        assert printable(text) == text
    assert printable(12) == "12"


def test_multiline_keeps_newlines_and_tabs_but_not_a_lone_carriage_return() -> None:
    assert printable("a\tb\nc\r\nd\re\x1b", multiline=True) == "a\tb\nc\nd\\re\\x1b"


def test_a_styled_text_keeps_its_styles_with_escapes_inside() -> None:
    from rich.text import Text

    text = Text.assemble(("v1", "bold"), " reason \x1b[2J", ("\u202e!", "red"))
    safe = plain_text(text)
    assert safe.plain == "v1 reason \\x1b[2J\\u202e!"
    assert [(safe.plain[s.start:s.end], str(s.style)) for s in safe.spans] == [
        ("v1", "bold"), ("\\u202e!", "red")]


def test_log_lines_decode_split_characters_and_crlf_across_reads() -> None:
    data = "é\x1b[2J line\r\nprogress 10%\rprogress 99%\r\nend".encode()
    lines = LogLines()
    shown = "".join(lines.feed(data[i:i + 1]) for i in range(len(data))) + lines.close()
    assert shown == "é\\x1b[2J line\nprogress 10%\\rprogress 99%\nend\n"


# -- a workspace holding the corpus, stored through the CLI ---------------------------------

HOSTILE_PIPELINE = WRAPPER_HEADER + f'''

HOSTILE = {HOSTILE_NUL!r}


def train(frame, params):
    print("log line: " + HOSTILE, flush=True)
    print("stderr line: " + HOSTILE, file=sys.stderr, flush=True)
    job = Path.cwd()
    deadline = time.monotonic() + 120
    while not (job / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # `jobs logs -f` follows the job while it runs
    raise ValueError(HOSTILE)
'''


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The base training workspace with the corpus in every reason and in a failed job;
    {"workspace", "job", "follow": (code, out, err) of `jobs logs -f` on the running job}."""
    workspace = copy_workspace(base_workspace_root(tmp_path_factory),
                               tmp_path_factory.mktemp("hostile") / "ws")
    code, out, err = cli("retrain", "--regime", "suv", "--wait", "--json", workspace=workspace)
    assert code == 0, err
    steps = [("deploy", "v1", "--target", "production", "--create-target", "--reason", HOSTILE),
             ("deploy", "v2", "--target", "production", "--reason", MARKUP),
             ("ct", "resume", "--target", "production", "--reason", HOSTILE),
             ("rollback", "--target", "production", "--reason", HOSTILE)]  # pinned again
    for step in steps:
        code, out, err = cli(*step, workspace=workspace)
        assert code == 0, (step, err)
        assert_text_only(out + err)
    install_pipeline(workspace, HOSTILE_PIPELINE)
    code, out, err = cli("retrain", "--regime", "suv", "--json", workspace=workspace)
    assert code == 0, err
    job = json.loads(out)["id"]
    job_dir = workspace.jobs_root / job / "work"  # what the job writes
    wait_until(lambda: "stderr line" in (job_dir / "job.log").read_text(errors="replace")
               if (job_dir / "job.log").exists() else False, 120, "the hostile log lines")
    follower = subprocess.Popen(
        [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(workspace.root),
         "jobs", "logs", "-f", job[:8]], cwd=workspace.root.parent,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)  # the follower reads the log at least once while the job runs
        (job_dir / "release").write_text("go\n")
        out_bytes, err_bytes = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
    code, out, err = cli("jobs", "reconcile", "--json", workspace=workspace)
    assert code == 0, err
    return {"workspace": workspace, "job": job,
            "follow": (follower.returncode, out_bytes.decode(), err_bytes.decode())}


def test_json_gives_every_stored_string_back_exactly(stored: dict) -> None:
    workspace, job = stored["workspace"], stored["job"]
    code, out, _ = cli("deployments", "history", "--json", workspace=workspace)
    assert code == 0
    reasons = [e["reason"] for e in json.loads(out)["events"] if e["kind"] == "active"]
    assert reasons == [HOSTILE, MARKUP, HOSTILE]
    code, out, _ = cli("audit", "--json", workspace=workspace)
    assert code == 0
    audited = [e["detail"].get("reason") for e in json.loads(out)["entries"]]
    assert audited.count(HOSTILE) == 3 and MARKUP in audited
    code, out, _ = cli("jobs", "show", job[:8], "--json", workspace=workspace)
    assert code == 0
    shown = json.loads(out)
    assert shown["state"] == "failed" and HOSTILE_NUL in shown["reason"]
    assert_text_only(out)  # JSON escapes the characters itself: the document is plain ASCII


@pytest.mark.parametrize(("command", "visible"), [
    (("deployments", "history"), VISIBLE + (MARKUP,)),
    (("deployments", "list"), VISIBLE),  # the rollback's pin and its reason
    (("audit",), ("\\x1b]0;pwned\\x07",)),  # the detail column is cut at 80 characters
    (("jobs", "list"), ("\\x1b]0;pwned\\x07",)),  # the reason column is cut at 60
    (("jobs", "show", "JOB"), VISIBLE + (MARKUP, "nul\\x00")),
    (("jobs", "logs", "JOB"), VISIBLE + (MARKUP, "nul\\x00", "log line: ", "stderr line: ")),
    (("status",), ()),
    (("models", "show", "v2"), ()),
    (("models", "list"), ()),
])
def test_every_command_shows_the_stored_strings_as_text(stored: dict, command: tuple,
                                                        visible: tuple) -> None:
    args = [stored["job"][:8] if word == "JOB" else word for word in command]
    code, out, err = cli(*args, workspace=stored["workspace"])
    assert code == 0, err
    assert_text_only(out + err, *visible)


def test_a_followed_log_is_shown_as_text_line_by_line(stored: dict) -> None:
    code, out, err = stored["follow"]
    assert code == 0, err
    assert_text_only(out + err, *VISIBLE, MARKUP, "nul\\x00", "log line: ", "stderr line: ")
    assert "\nValueError: \\x1b]0;pwned" in out  # the traceback's last line, on its own line


def test_a_failed_jobs_reason_on_stderr_is_shown_as_text(stored: dict) -> None:
    workspace = copy_workspace(stored["workspace"].root, stored["workspace"].root.parent / "w2")
    install_pipeline(workspace, HOSTILE_PIPELINE.replace("time.monotonic() + 120",
                                                          "time.monotonic()"))
    code, out, err = cli("retrain", "--regime", "suv", "--wait", workspace=workspace)
    assert code == 3, err
    assert_text_only(out + err, "error: job ", "failed: ValueError: \\x1b]0;pwned\\x07", *VISIBLE,
                     MARKUP, "nul\\x00")
    assert err.count("\n") == err.count("job ")  # one line each, none broken by the reason


@pytest.mark.parametrize("args", [
    ("ingest", "/nonexistent/" + HOSTILE.replace("/", "_") + ".csv"),  # echoed in the error
    ("audit", "--" + HOSTILE),  # click's "No such option: ..." echoes it
    ("models", "show", HOSTILE),
    ("deploy", "v1", "--target", HOSTILE),
])
def test_errors_echoing_user_input_show_it_as_text(stored: dict, args: tuple) -> None:
    code, out, err = cli(*args, workspace=stored["workspace"])
    assert code == 2, err
    assert_text_only(out + err, "\\x1b]0;pwned\\x07")


# -- the dashboard -----------------------------------------------------------------------------

SIZE = (200, 50)  # wide: the reason columns show the escapes, not an ellipsis


def rendered(app) -> tuple[str, list]:
    """The screen as plain text (tui_helpers.screen_text) and its styled segments."""
    from rich.console import Console

    text = screen_text(app)
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens, simplify=True))
    return text, list(console._record_buffer)


def assert_screen_is_text(app, *visible: str) -> str:
    text, segments = rendered(app)
    assert_text_only(text, *visible)
    links = {s.style.link for s in segments if s.style is not None and s.style.link}
    assert not links, f"markup became hyperlinks: {links}"
    return text


@pytest.fixture
def dashboard(stored: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    clean_terminal_environment(monkeypatch, tmp_path)
    return copy_workspace(stored["workspace"].root, tmp_path / "ws")


async def jump(pilot, view: str) -> None:
    await pilot.press("colon", *view, "enter")
    await settle(pilot)


def test_the_dashboard_shows_reasons_jobs_and_logs_as_text(dashboard: Workspace) -> None:
    async def scenario() -> None:
        app = make_app(dashboard, frozen=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert_screen_is_text(app, "\\x1b]0;pwned\\x07")  # recent serving changes
            await jump(pilot, "history")
            text = assert_screen_is_text(app, "\\x1b]0;pwned\\x07\\x1b[2J", MARKUP)
            assert "reason=\\x1b]0;pwned" in text  # the audit pane's detail
            await jump(pilot, "jobs")
            for _ in range(100):  # the log pane fills from a worker
                if "log line: " in screen_text(app):
                    break
                await pilot.pause(0.1)
            assert_screen_is_text(app, "failed", "ValueError: \\x1b]0;pwned\\x07",
                                  "log line: \\x1b]0;pwned\\x07\\x1b[2J", "stderr line: ")
            await jump(pilot, "models")
            assert_screen_is_text(app)

    asyncio.run(scenario())


def test_names_in_data_are_refused_and_echoed_as_text(stored: dict, tmp_path: Path) -> None:
    """Regime values and column names come from data files: the validators refuse these
    (nothing is stored), and the refusal shows the name escaped."""
    import pandas as pd

    from mlops_tui.sample import packaged_observations_path

    frame = pd.read_parquet(packaged_observations_path()).head(20)
    frame["obs_id"] = [f"hostile-{n}" for n in range(len(frame))]  # not ingested before
    regime = frame.assign(car_model="suv" + HOSTILE.replace(",", ";"))
    column = frame.assign(**{"extra" + HOSTILE.replace(",", ";"): 1.0})
    for name, data in (("regime.parquet", regime), ("column.parquet", column)):
        path = tmp_path / name
        data.to_parquet(path, index=False)  # CSV sniffing would refuse the CR first
        code, out, err = cli("ingest", str(path), workspace=stored["workspace"])
        assert code == 2, err
        assert_text_only(out + err, "\\x1b]0;pwned\\x07")


def test_a_toast_shows_its_message_as_text(dashboard: Workspace) -> None:
    """Reconcile and action results become toasts; their text carries stored reasons. (The
    headless test screen draws no toast rack: the notification itself is checked.)"""
    async def scenario() -> None:
        app = make_app(dashboard, frozen=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.notify("job failed: " + HOSTILE_NUL, title=MARKUP + "\x1b[2J")
            await settle(pilot)
            toast = list(app._notifications)[-1]
            assert toast.markup is False
            assert_text_only(toast.message, "job failed: \\x1b]0;pwned\\x07", *VISIBLE)
            assert toast.title == MARKUP + "\\x1b[2J"

    asyncio.run(scenario())
