"""`motet start --instances N` hands each child its flags, which may hold a backend URL with a
password: never on the child's command line, which every user of the host can read (`ps`)."""

from __future__ import annotations

import socket
from pathlib import Path

import trio

from motet.cli._app import Project
from motet.cli._instances import ChildSpawner

SECRET = "hunter2-not-in-ps"


async def test_a_backend_password_is_not_on_the_childs_command_line(tmp_path: Path) -> None:
    (tmp_path / "steps").mkdir()
    flags = {"backend": f"redis://:{SECRET}@127.0.0.1:1/0"}
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        child = await ChildSpawner(Project(tmp_path, False), flags, listener.fileno())(1)
        try:
            # What was exec'd: /proc/PID/cmdline would show the same, but only while the
            # child lives (a child that already failed to reach Redis shows an empty one).
            argv = [str(arg) for arg in child.process.args]  # type: ignore[union-attr]
        finally:
            child.kill()
            with trio.move_on_after(10):
                await child.wait()
    assert argv[-2:] == ["-m", "motet.cli._instances"]
    assert not any(SECRET in arg for arg in argv)
