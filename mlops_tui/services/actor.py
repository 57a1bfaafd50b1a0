"""Who is acting: the OS user, the host, and the SSH client when there is one."""

from __future__ import annotations

import getpass
import os
import socket


def current_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    actor = f"{user}@{socket.gethostname()}"
    ssh = os.environ.get("SSH_CONNECTION", "").split()
    if ssh:
        actor += f" via ssh from {ssh[0]}"
    return actor
