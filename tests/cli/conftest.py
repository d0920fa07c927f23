"""Every CLI test sees the CLI as a new process would."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fresh_consoles() -> None:
    """Each invocation reads its own COLUMNS, as a new `etl` process does (rich fixes a console's
    width when it is made, and the CLI makes its consoles once per process)."""
    import cli.main

    for console in (cli.main.out, cli.main.err):
        console._console = None
