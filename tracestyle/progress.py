"""The one progress helper: rich bars on stderr with elapsed time and ETA, silent under --quiet or
TRACESTYLE_QUIET. Stages report (done, total, row); a row's loss and eval loss are shown beside the bar."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def silenced(quiet: bool) -> bool:
    return quiet or bool(os.environ.get("TRACESTYLE_QUIET"))


def _progress():
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # a log file or pipe gets rich's 80 columns, which cut "step 12/22 ... ETA 0:01:10" down to "1… 0… ETA 0:…"
    width = None if sys.stderr.isatty() else 160
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=Console(file=sys.stderr, width=width), transient=False)


@contextmanager
def progress_bar(label: str, total: int, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """A bar advanced by the callback it yields (advance(n=1))."""
    if silenced(quiet):
        yield lambda n=1: None
        return
    with _progress() as prog:
        task = prog.add_task(label, total=total)
        yield lambda n=1: prog.advance(task, n)


def stage_progress(label: str, quiet: bool = False) -> Callable[..., None] | None:
    """A callback cb(done, total, row=None) for a stage's own progress (training steps, problems evaluated);
    None when silenced, so stages skip the work of reporting."""
    if silenced(quiet):
        return None
    state: dict = {"prog": None, "task": None}

    def cb(done: int, total: int, row: dict | None = None) -> None:
        if state["prog"] is None:
            state["prog"] = _progress()
            state["prog"].start()
            state["task"] = state["prog"].add_task(label, total=total)
        state["prog"].update(state["task"], completed=done, total=total, description=describe(label, row))
        if done >= total:
            state["prog"].stop()
    return cb


def describe(label: str, row: dict | None) -> str:
    """The job's label, with the latest training loss (and held-out loss) or RL reward beside it."""
    desc = label
    if row and "reward" in row:   # RL: the reward and the share of groups that taught nothing
        desc += f"  reward {row['reward']:.3f}" + (f" zero-spread {row['zero_spread_groups']:.2f}"
                                                   if "zero_spread_groups" in row else "")
    elif row and "loss" in row:
        desc += f"  loss {row['loss']:.3f}" + (f" eval {row['eval_loss']:.3f}" if "eval_loss" in row else "")
    return desc


def queue_progress(queue, label: str) -> Callable[..., None]:
    """A stage's progress callback in a worker process: each update goes to the parent's Board through `queue`."""
    def cb(done: int, total: int, row: dict | None = None) -> None:
        queue.put((label, done, total, describe(label, row)))
    return cb


class Board:
    """The parent's display of jobs running side by side in worker processes: one bar per running job, from its
    start (model loading included) with its own progress and ETA, fed by the workers through `queue`; a finished
    job leaves one line behind, as a job's own bar does when jobs run one at a time."""

    def __init__(self, queue, quiet: bool = False):
        self.queue, self.quiet, self.tasks = queue, silenced(quiet), {}

    def __enter__(self):
        import threading

        if not self.quiet:
            self.prog = _progress()
            self.prog.start()
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        return self

    def _read(self) -> None:
        while (msg := self.queue.get()) is not None:
            label, done, total, desc = msg
            try:
                self.prog.update(self.tasks[label], completed=done, total=total, description=desc)
            except KeyError:      # the job finished meanwhile: its line is printed
                pass

    def start(self, label: str) -> None:
        if not self.quiet:
            self.tasks[label] = self.prog.add_task(label, total=None)

    def finish(self, label: str, skipped: bool = False) -> None:
        """The job's bar leaves the live display; its last state stays as one printed line."""
        if self.quiet or label not in self.tasks:
            return
        task_id = self.tasks.pop(label)
        t = next(t for t in self.prog.tasks if t.id == task_id)
        count = f"{int(t.total)}/{int(t.total)}  " if t.total else ""
        took = int(t.elapsed or 0)
        self.prog.remove_task(task_id)
        self.prog.console.print(f"{t.description}  {count}{took // 60}:{took % 60:02d}"
                                + ("  (done before: skipped)" if skipped else ""), highlight=False)

    def __exit__(self, *exc):
        if not self.quiet:
            self.queue.put(None)
            self.reader.join(timeout=10)
            self.prog.stop()
        return False
