"""The offline template teacher: renders each problem's known solution through each register's reference
render, so every register carries the same content and only the style differs."""

from __future__ import annotations

from tracestyle.prompts import Register
from tracestyle.tasks import task_of


def template_trace(problem: dict, register: Register) -> str:
    task = task_of(problem)
    return register.reference(task.template_set, task.solution_context(problem))
