"""End to end in real terminals: `mlops-tui` under tmux (keys sent, screen captured), through
a real SSH login to localhost, under a pty that hangs up, and the ways out: ctrl+c, q with
reads or a write in flight, and a terminal closed under nohup.

tmux runs on its own socket and sshd on a loopback port with throwaway host and client
keys, both started here and stopped by their process ids. With CI=true a missing tool fails
the test instead of skipping it (.ci/run installs tmux and openssh-server).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tui_helpers import copy_workspace, plant_template

from mlops_tui.services.deployment_reads import audit_log, serving_state
from mlops_tui.services.workspace import Workspace

SSHD = "/usr/sbin/sshd"
REPO_ROOT = Path(__file__).resolve().parents[1]


def require(tool: str) -> str:
    found = shutil.which(tool) or (tool if os.path.isabs(tool) and os.access(tool, os.X_OK)
                                   else None)
    if found is None:
        message = f"{tool} is not installed (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def wait_until(check: Callable[[], object], timeout: float, what: str,
               describe: Callable[[], str] = lambda: "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{describe()}")


def dashboard_command(workspace: Workspace) -> list[str]:
    return [sys.executable, "-m", "mlops_tui.cli.main", "--workspace", str(workspace.root)]


def lock_is_free(workspace: Workspace) -> bool:
    """Nobody holds the store lock: an exclusive, non-blocking flock succeeds."""
    fd = os.open(workspace.store.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def active(workspace: Workspace) -> str:
    return f"v{serving_state(workspace).active['production'].to_version}"


@pytest.fixture
def plant(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return copy_workspace(plant_template(tmp_path_factory), tmp_path / "plant-a")


class Tmux:
    """A private tmux server (own socket) with one session."""

    def __init__(self, socket_dir: Path) -> None:
        self.binary = require("tmux")
        self.socket = str(socket_dir / "tmux.sock")
        self.session = "dashboard"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, "-S", self.socket, *args], capture_output=True,
                              text=True, timeout=20, check=check)

    def start(self, command: list[str], env: dict[str, str], width: int = 120,
              height: int = 36) -> None:
        environment = [part for k, v in env.items() for part in ("-e", f"{k}={v}")]
        self.run("new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height),
                 *environment, " ".join(_quote(part) for part in command))
        self.run("set-option", "-t", self.session, "remain-on-exit", "on")

    def screen(self) -> str:
        done = self.run("capture-pane", "-p", "-t", self.session, check=False)
        return done.stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def pane_pid(self) -> int:
        return int(self.run("display-message", "-p", "-t", self.session,
                            "#{pane_pid}").stdout.strip())

    def pane_dead(self) -> bool:
        done = self.run("display-message", "-p", "-t", self.session, "#{pane_dead}",
                        check=False)
        return done.stdout.strip() == "1"

    def wait_for(self, text: str, timeout: float = 60) -> str:
        return wait_until(lambda: text in self.screen() and self.screen(), timeout,
                          f"{text!r} on the tmux screen", self.screen)

    def stop(self) -> None:
        pid_text = self.run("display-message", "-p", "#{pid}", check=False).stdout.strip()
        self.run("kill-server", check=False)
        if pid_text.isdigit():  # the server we started; gone after kill-server normally
            try:
                os.kill(int(pid_text), signal.SIGTERM)
            except ProcessLookupError:
                pass


def _quote(part: str) -> str:
    return "'" + part.replace("'", "'\\''") + "'"


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def terminal_env(tmp_path: Path) -> dict[str, str]:
    """The dashboard's environment; PYTHONPATH makes it run this checkout's code."""
    return {"HOME": str(tmp_path), "TERM": "xterm-256color", "LANG": "C.UTF-8",
            "MLOPS_TUI_LOCK_TIMEOUT": "5", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO_ROOT)}


def rollback_by_keys(screen: Callable[[], str], keys: Callable[..., None],
                     workspace: Workspace, wait_for: Callable[[str], str]) -> None:
    """From the overview: b, read the dialog, tab to the action, enter; check the store."""
    wait_for("Regimes")
    wait_for("▲ drift")
    keys("b")
    dialog = wait_for("Roll production back to v3?")
    assert "environment v3 → image:mlops-trainer:a: ✓ COMPATIBLE" in dialog
    keys("Tab")
    time.sleep(0.3)  # typing speed: the highlight moves before enter
    keys("Enter")
    wait_until(lambda: active(workspace) == "v3", 30, "production to be v3", screen)
    wait_for("production  v3")
    entry = audit_log(workspace, limit=1)[0]
    assert (entry.action, entry.subject, entry.detail["from"], entry.detail["to"]) == (
        "rollback", "active:production", "v7", "v3")


def test_rollback_by_keys_in_a_real_terminal(plant, tmux, tmp_path):
    tmux.start(dashboard_command(plant), terminal_env(tmp_path))
    rollback_by_keys(tmux.screen, tmux.keys, plant, tmux.wait_for)
    tmux.keys("q")
    wait_until(tmux.pane_dead, 20, "the dashboard to quit", tmux.screen)
    assert lock_is_free(plant)


# -- SSH --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """sshd on a loopback port: throwaway host key, one client key, this user only."""
    daemon = require(SSHD)
    keygen = require("ssh-keygen")
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for name in ("host", "client"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)],
                       check=True, timeout=30)
    (keys / "authorized_keys").write_text((keys / "client.pub").read_text())
    port = free_port()
    config = keys / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {keys / 'host'}",
        f"PidFile {keys / 'sshd.pid'}", f"AuthorizedKeysFile {keys / 'authorized_keys'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "StrictModes no",
        "UsePAM no", "PrintMotd no", "LogLevel ERROR", "",
    ]))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation directory
    log = open(keys / "sshd.log", "w")
    process = subprocess.Popen([daemon, "-D", "-e", "-f", str(config)], stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, 20, "sshd to listen", lambda: (keys / "sshd.log").read_text())
        yield port, keys
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def find_dashboard(workspace: Workspace) -> int | None:
    """The pid of the dashboard serving `workspace` (its command line names the workspace)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mlops_tui.cli.main" in arguments and str(workspace.root).encode() in arguments:
            return int(entry.name)
    return None


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_over_ssh_a_rollback_by_keys_then_a_dead_client_ends_the_dashboard(
        plant, tmux, sshd, tmp_path):
    port, keys = sshd
    ssh = require("ssh")
    remote = " ".join(_quote(part) for part in [
        "env", f"HOME={tmp_path}", "LANG=C.UTF-8", "MLOPS_TUI_LOCK_TIMEOUT=5",
        f"PYTHONPATH={REPO_ROOT}", *dashboard_command(plant)])
    tmux.start([ssh, "-tt", "-i", str(keys / "client"), "-p", str(port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                f"{os.environ.get('USER') or 'root'}@127.0.0.1", f"exec {remote}"],
               terminal_env(tmp_path))
    rollback_by_keys(tmux.screen, tmux.keys, plant, tmux.wait_for)
    dashboard = wait_until(lambda: find_dashboard(plant), 10, "the dashboard's process")
    assert "via ssh from 127.0.0.1" in audit_log(plant, limit=1)[0].actor
    os.kill(tmux.pane_pid(), signal.SIGKILL)  # the operator's connection dies
    wait_until(lambda: not alive(dashboard), 30, "the dashboard to exit after the hang-up")
    assert lock_is_free(plant)


# -- a plain pty: SIGHUP is a clean exit --------------------------------------------------------


def test_sighup_exits_cleanly_and_releases_the_store(plant, tmp_path):
    pid, fd = pty.fork()
    if pid == 0:  # the child: the dashboard on the pty
        try:
            os.environ.update(terminal_env(tmp_path))
            os.execv(sys.executable, dashboard_command(plant))
        finally:
            os._exit(127)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while b"Regimes" not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    output += os.read(fd, 65536)
                except OSError:
                    break
        assert b"Regimes" in output, output[-2000:]
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            finished, status = os.waitpid(pid, os.WNOHANG)
            if finished:
                break
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    os.read(fd, 65536)
                except OSError:
                    pass
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the dashboard did not exit within 20 s of SIGHUP")
    finally:
        os.close(fd)
    assert os.WIFEXITED(status), f"killed by signal {os.WTERMSIG(status)}, not a clean exit"
    assert os.WEXITSTATUS(status) == 129
    assert lock_is_free(plant)


# -- leaving: ctrl+c, q, and a terminal that goes away ----------------------------------------


def pane_flags(tmux: Tmux) -> str:
    """Alternate screen, cursor shown, mouse reporting: '0 1 0' is a terminal given back."""
    return tmux.run("display-message", "-p", "-t", tmux.session,
                    "#{alternate_on} #{cursor_flag} #{mouse_any_flag}").stdout.strip()


def in_shell(command: list[str], tmp_path: Path) -> list[str]:
    """`command` in a shell that records the tty modes before and after it and its status,
    then keeps the terminal open."""
    line = " ".join(_quote(part) for part in command)
    return ["sh", "-c", f"cd {_quote(str(tmp_path))}; stty -g > modes-before; {line}; "
            f"echo \"dashboard exited $?\" > status; stty -g > modes-after; exec sleep 600"]


def test_ctrl_c_quits_with_130_and_gives_the_terminal_back(plant, tmux, tmp_path):
    tmux.start(in_shell(dashboard_command(plant), tmp_path), terminal_env(tmp_path))
    tmux.wait_for("Regimes")
    assert pane_flags(tmux).split()[0] == "1"  # the dashboard is on the alternate screen
    tmux.keys("C-c")
    status = tmp_path / "status"
    wait_until(status.exists, 10, "the dashboard to exit on ctrl+c", tmux.screen)
    assert status.read_text().strip() == "dashboard exited 130"
    assert (tmp_path / "modes-after").read_text() == (tmp_path / "modes-before").read_text()
    assert pane_flags(tmux) == "0 1 0"
    assert "Press" not in tmux.screen()  # no "Press q to quit" toast, no leftover screen
    assert lock_is_free(plant)


@contextmanager
def store_lock_held(workspace: Workspace) -> Iterator[Callable[[], None]]:
    """The store's lock held exclusively, as a long write of another process holds it; the
    yielded function releases it early."""
    fd = os.open(workspace.store.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held = [True]

    def release() -> None:
        if held[0]:
            fcntl.flock(fd, fcntl.LOCK_UN)
            held[0] = False

    try:
        yield release
    finally:
        release()
        os.close(fd)


def test_q_does_not_wait_for_reads_stuck_on_a_busy_store(plant, tmux, tmp_path):
    env = terminal_env(tmp_path) | {"MLOPS_TUI_LOCK_TIMEOUT": "20"}
    tmux.start(in_shell(dashboard_command(plant), tmp_path), env)
    tmux.wait_for("Regimes")
    tmux.wait_for("▲ drift")
    with store_lock_held(plant):
        tmux.keys("r")  # the overview's read now waits up to 20 s for the lock
        time.sleep(0.5)
        tmux.keys("q")
        started = time.monotonic()
        status = tmp_path / "status"
        wait_until(status.exists, 10, "the dashboard to quit", tmux.screen)
        took = time.monotonic() - started
    assert status.read_text().strip() == "dashboard exited 0"
    assert took < 1.5, f"q took {took:.2f}s with a read waiting for the store"


def test_q_waits_for_a_store_write_in_flight(plant, tmux, tmp_path):
    env = terminal_env(tmp_path) | {"MLOPS_TUI_LOCK_TIMEOUT": "30"}
    tmux.start(in_shell(dashboard_command(plant), tmp_path), env)
    tmux.wait_for("Regimes")
    tmux.wait_for("▲ drift")
    tmux.keys("b")
    tmux.wait_for("Roll production back to v3?")
    status = tmp_path / "status"
    with store_lock_held(plant) as release:
        tmux.keys("Tab")
        time.sleep(0.3)
        tmux.keys("Enter")  # the rollback now waits for the lock: a write in flight
        time.sleep(0.5)
        tmux.keys("q")
        time.sleep(1.5)
        assert not status.exists(), "the dashboard left before its write finished"
        assert pane_flags(tmux) == "0 1 0"  # the terminal is already given back
        release()
        wait_until(status.exists, 30, "the dashboard to exit after its write", tmux.screen)
    assert status.read_text().strip() == "dashboard exited 0"
    assert active(plant) == "v3"
    assert audit_log(plant, limit=1)[0].action == "rollback"


BLOCK_SIGHUP = ("import os, signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, "
                "{signal.SIGHUP}); os.execvp(sys.argv[1], sys.argv[1:])")


@pytest.mark.parametrize("hangup", ["ignored", "ignored-and-blocked"])
def test_under_nohup_closing_the_terminal_ends_the_dashboard(plant, tmux, tmp_path, hangup):
    """nohup: SIGHUP ignored, stdin unreadable, output to nohup.out; only the controlling
    terminal ties the dashboard to the session. Blocked, SIGHUP never arrives at all, so
    only the dashboard's own watch on its terminal can notice."""
    command = ["nohup", *dashboard_command(plant)]
    if hangup == "ignored-and-blocked":
        command = [sys.executable, "-c", BLOCK_SIGHUP, *command]
    tmux.start(in_shell(command, tmp_path), terminal_env(tmp_path))
    out = tmp_path / "nohup.out"
    wait_until(lambda: out.exists() and b"Regimes" in out.read_bytes(), 60,
               "the dashboard to draw into nohup.out", tmux.screen)
    dashboard = wait_until(lambda: find_dashboard(plant), 10, "the dashboard's process")
    try:
        time.sleep(1.0)
        assert alive(dashboard), "the dashboard did not keep running under nohup"
        tmux.run("kill-session", "-t", tmux.session)  # the terminal window is closed
        closed = time.monotonic()
        wait_until(lambda: not alive(dashboard), 10, "the dashboard to exit")
        took = time.monotonic() - closed
    finally:
        if alive(dashboard):  # it outlived its terminal: do not leave it running
            os.kill(dashboard, signal.SIGKILL)
    assert took < 2.0, f"the dashboard outlived its terminal by {took:.2f}s"
    assert lock_is_free(plant)
