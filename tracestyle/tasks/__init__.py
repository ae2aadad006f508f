"""Tasks: one folder per task behind one interface and one registry, and the one `score()` every stage uses
(evaluation, the RSFT reward, the `correct` filter and the failure taxonomy).

Adding a task = adding a folder with a `Task` subclass and one line below.
"""

from __future__ import annotations

from tracestyle.registry import Registry
from tracestyle.tasks.base import Task
from tracestyle.tasks.gsm8k import GSM8KTask
from tracestyle.tasks.kg import KGTask, PhantomWikiSource
from tracestyle.tasks.reasoning_gym import ReasoningGymTask

TASKS: Registry[Task] = Registry("task")
TASKS.add("gsm8k", GSM8KTask())
TASKS.add("kg", KGTask())
TASKS.add("reasoning_gym", ReasoningGymTask())
TASKS.add("phantomwiki", PhantomWikiSource())


def get_task(name: str) -> Task:
    return TASKS.get(name)


def task_of(problem: dict) -> Task:
    return TASKS.get(problem.get("task") or "gsm8k")


def point_at(problems: list[dict], resource: str) -> list[dict]:
    """A later command's --kg: each task's problems that use such a resource resolve through the one given."""
    for task in {id(t): t for t in (task_of(p) for p in problems)}.values():
        problems = task.point_at(problems, resource)
    return problems


def score(problem: dict, output: str, *, truncated: bool | None = None) -> dict:
    """Score one output against its problem: the answer verdict plus the task's own trace verdicts.
    `truncated`: the generation hit its token limit (a cut-off fragment must not count as the answer)."""
    task = task_of(problem)
    v = task.check_answer(problem, output, truncated=truncated)
    row = {"extracted": v.extracted, "correct": bool(v.ok), "verdict": v.reason,
           "extractor": v.details.get("extractor")}
    for name, tv in task.check_trace(problem, output).items():
        row[f"{name}_valid"] = tv.ok
        row[name] = {"reason": tv.reason, **tv.details}
    return row


__all__ = ["TASKS", "Task", "get_task", "point_at", "score", "task_of"]
