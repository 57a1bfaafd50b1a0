"""How the dashboard leaves its terminal.

`q` and `ctrl+c` leave at once (0 and 130); SIGINT, SIGTERM and SIGHUP end it with 130, 143
and 129, even when SIGHUP was ignored by whoever started it (nohup). The terminal going
away ends it with 129 whatever the signal dispositions: the input thread sees end-of-file or
EIO on the tty, and a watcher checks every POLL_SECONDS that the terminal is still there.
Leaving waits only for store writes in flight; reads still running are abandoned.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import sys
import termios
import threading
from codecs import getincrementaldecoder
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

HANGUP_EXIT_CODE = 129  # 128 + SIGHUP, as a shell reports it
INTERRUPT_EXIT_CODE = 130  # 128 + SIGINT
TERMINATE_EXIT_CODE = 143  # 128 + SIGTERM
SIGNAL_EXIT_CODES = {signal.SIGHUP: HANGUP_EXIT_CODE, signal.SIGINT: INTERRUPT_EXIT_CODE,
                     signal.SIGTERM: TERMINATE_EXIT_CODE}
POLL_SECONDS = 0.25
FORCE_AFTER_SECONDS = 1.5  # a signal or a hang-up the app has not acted on by then ends it
WRITE_WAIT_SECONDS = 30.0  # at most this long for a store write in flight
GONE_ERRNOS = frozenset({errno.EIO, errno.ENXIO, errno.EPIPE, errno.EBADF, errno.ENODEV})
# What the driver's own exit writes, for an exit forced past a stuck event loop.
RESTORE = (b"\x1b[?2004l\x1b[?7h\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[<u"
           b"\x1b[?1049l\x1b[?25h\x1b[?1004l")


class StoreWrites:
    """Store writes the dashboard has in flight (actions, job reconciling)."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._idle:
            self._count += 1
        try:
            yield
        finally:
            with self._idle:
                self._count -= 1
                self._idle.notify_all()

    def wait(self, timeout: float = WRITE_WAIT_SECONDS) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


def end_process(code: int, writes: StoreWrites | None) -> None:
    """After the app has stopped: let a store write finish, then end without waiting for
    reader threads or the interpreter's teardown (nothing of the store is held by them)."""
    for number in SIGNAL_EXIT_CODES:  # a second signal while a write finishes ends at once
        try:
            signal.signal(number, lambda signum, _frame: os._exit(128 + signum))
        except (ValueError, OSError):
            pass  # not the main thread
    if writes is not None:
        writes.wait()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


def controlling_terminal_present() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as error:
        return error.errno not in GONE_ERRNOS  # e.g. EMFILE says nothing about the terminal
    os.close(fd)
    return True


class _Output:
    """The driver's output file: a write to a terminal that is gone is dropped (the writer
    thread must not die, or the app blocks on its full queue) and reported."""

    def __init__(self, file: Any, gone: Any) -> None:
        self._file = file
        self._gone = gone

    def write(self, text: str) -> None:
        try:
            self._file.write(text)
        except OSError as error:
            self._failed(error)

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as error:
            self._failed(error)

    def fileno(self) -> int:
        return self._file.fileno()

    def _failed(self, error: OSError) -> None:
        if error.errno in GONE_ERRNOS:
            self._gone("output")


class WatchfulDriver(LinuxDriver):
    """Textual's Linux driver, which also leaves when its terminal goes away or a signal
    asks, and whose input thread stops at once when the app exits."""

    def __init__(self, app: Any, **options: Any) -> None:
        super().__init__(app, **options)
        self._file = _Output(self._file, self._terminal_gone)
        self._wake_read, self._wake_write = os.pipe()
        self._watch_stop = threading.Event()
        self._leaving_lock = threading.Lock()
        self._leaving: int | None = None
        self._tty_fds: tuple[int, ...] | None = None  # what the first start found
        self._had_terminal = False

    # -- start and stop ------------------------------------------------------------------------

    def start_application_mode(self) -> None:
        """Also called again on SIGCONT, which a hang-up sends along with SIGHUP: the
        terminal to keep is the one found by the first start."""
        if self._tty_fds is None:
            self._tty_fds = tuple(fd for fd in {self.fileno, self._file.fileno()}
                                  if os.isatty(fd))
            self._had_terminal = controlling_terminal_present()
        super().start_application_mode()
        for number in SIGNAL_EXIT_CODES:
            try:  # installed even where nohup left SIGHUP ignored
                self._loop.add_signal_handler(number, self.leave, SIGNAL_EXIT_CODES[number])
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread
        self._watch_stop = stop = threading.Event()
        threading.Thread(target=self._watch, args=(stop,), name="terminal-watch",
                         daemon=True).start()

    def stop_application_mode(self) -> None:
        self._watch_stop.set()
        super().stop_application_mode()

    def close(self) -> None:
        super().close()
        for fd in (self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass

    def disable_input(self) -> None:
        try:
            os.write(self._wake_write, b".")  # the input thread returns now, not at its poll
        except OSError:
            pass  # closed: the input thread has ended
        try:
            super().disable_input()
        finally:
            os.set_blocking(self._wake_read, False)
            try:
                os.read(self._wake_read, 4096)
            except BlockingIOError:
                pass

    # -- leaving -------------------------------------------------------------------------------

    def leave(self, code: int) -> None:
        """Exit the app with `code`; if it has not ended FORCE_AFTER_SECONDS later (its event
        loop is stuck), end the process, after any store write in flight."""
        with self._leaving_lock:
            if self._leaving is not None:
                return
            self._leaving = code
        try:
            self._loop.call_soon_threadsafe(self._exit_app, code)
        except RuntimeError:
            pass  # the loop is closed: the app is ending anyway
        threading.Thread(target=self._force_end, args=(code,), name="terminal-force",
                         daemon=True).start()

    def _exit_app(self, code: int) -> None:
        self._app.exit(return_code=code)

    def _force_end(self, code: int) -> None:
        threading.Event().wait(FORCE_AFTER_SECONDS)
        writes = getattr(self._app, "store_writes", None)
        if writes is not None:
            writes.wait()
        if code != HANGUP_EXIT_CODE and self.attrs_before is not None:
            try:  # the terminal is still there: give it back as it was
                termios.tcsetattr(self.fileno, termios.TCSANOW, self.attrs_before)
                os.write(self._file.fileno(), RESTORE)
            except (OSError, termios.error):
                pass
        os._exit(code)

    def _terminal_gone(self, _where: str = "") -> None:
        self.leave(HANGUP_EXIT_CODE)

    def terminal_is_gone(self) -> bool:
        """A tty we started on is no longer a tty (hung up), or the controlling terminal we
        had cannot be opened any more. The parent process is no evidence either way."""
        if any(not os.isatty(fd) for fd in self._tty_fds or ()):
            return True
        return self._had_terminal and not controlling_terminal_present()

    def _watch(self, stop: threading.Event) -> None:
        if self.terminal_is_gone():  # e.g. restarted by the SIGCONT of a hang-up
            self._terminal_gone("watch")
            return
        while not stop.wait(POLL_SECONDS):
            if self.terminal_is_gone():
                self._terminal_gone("watch")
                return

    # -- input ---------------------------------------------------------------------------------

    def run_input_thread(self) -> None:
        """Textual's input loop, plus: a wake-up pipe ends it at once; end-of-file or an
        error reading a tty means the terminal is gone; input that is not a tty and ends
        (a pipe, nohup's unreadable stdin) is simply no more input, not a busy loop."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        reading = True
        try:
            while not self.exit_event.is_set():
                ready = {key.fd for key, _ in selector.select(0.1)}
                if self._wake_read in ready:
                    break
                if reading and self.fileno in ready:
                    try:
                        data = os.read(self.fileno, 4096)
                    except OSError:
                        data = b""
                    if not data:
                        reading = False
                        selector.unregister(self.fileno)
                        if self.input_tty:
                            self._terminal_gone("input")
                        continue
                    for event in parser.feed(decode(data)):
                        self.process_message(event)
                for event in parser.tick():
                    self.process_message(event)
        finally:
            selector.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass
