"""The offline template teacher: renders each problem's known solution through each register's reference
render, so every register carries the same content and only the style differs."""

from __future__ import annotations

from tracestyle.curate.solutions import solution_context
from tracestyle.prompts import Register


def template_trace(problem: dict, register: Register) -> str:
    return register.reference(problem["task"], solution_context(problem))
