"""Any server command as a target (the pytest plugin's `loadbench_target(command=...)`),
started, watched and stopped exactly like the uvicorn target of `loadbench.target`."""

from __future__ import annotations

from typing import Any

from loadbench.errors import BadInput
from loadbench.target import TargetProcess


class CommandTarget(TargetProcess):
    """`{port}` in an argument (and $PORT) is the free port picked; ready when
    `ready_path` answers 200."""

    def __init__(self, command: list[str], ready_path: str = "/", **options: Any) -> None:
        if not command:
            raise BadInput("command: give the server's command line, e.g. "
                           "['python', '-m', 'http.server', '{port}']")
        super().__init__(app=" ".join(command), **options)
        self.argv = list(command)
        self.ready_path = ready_path

    def command(self, port: int) -> list[str]:
        return [part.replace("{port}", str(port)) for part in self.argv]

    def _spawn(self, port: int) -> None:
        self.env["PORT"] = str(port)
        super()._spawn(port)
