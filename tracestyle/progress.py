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
        desc = label
        if row and "reward" in row:   # RL: the reward and the share of groups that taught nothing
            desc += f"  reward {row['reward']:.3f}" + (f" zero-spread {row['zero_spread_groups']:.2f}"
                                                       if "zero_spread_groups" in row else "")
        elif row and "loss" in row:
            desc += f"  loss {row['loss']:.3f}" + (f" eval {row['eval_loss']:.3f}" if "eval_loss" in row else "")
        state["prog"].update(state["task"], completed=done, total=total, description=desc)
        if done >= total:
            state["prog"].stop()
    return cb
