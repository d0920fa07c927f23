"""rich progress bars on stderr: one per stage, with rate and ETA, and what the run waits for."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from etl.engine.runner import ProgressSink


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} items/s" if speed else "– items/s", style="progress.data.speed")


class RichProgress(ProgressSink):
    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
            TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            TextColumn("{task.fields[note]}", markup=False, style="yellow"),
            console=console, transient=False,
        )
        self._console = console
        self._tasks: dict[str, int] = {}
        self._current: str | None = None

    def start(self, stage: str, total: int) -> None:
        if not self._tasks:
            self._progress.start()
        self._tasks[stage] = self._progress.add_task(stage, total=total, note="")
        self._current = stage

    def waiting(self, message: str | None) -> None:
        """In the progress line while bars are drawn live; otherwise (before the first stage, or
        stderr not a terminal) as a line of its own."""
        live = self._current is not None and self._console.is_terminal
        if live:
            self._progress.update(self._tasks[self._current], note=message or "")
        elif message is not None:
            self._console.print(message, markup=False, highlight=False)

    def advance(self, stage: str, count: int) -> None:
        self._progress.advance(self._tasks[stage], count)

    def finish(self, stage: str) -> None:
        self._progress.refresh()

    def close(self) -> None:
        if self._tasks:
            self._progress.stop()
