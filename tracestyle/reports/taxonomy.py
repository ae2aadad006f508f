"""Rule-based failure categories for evaluated outputs: each task names its own (Task.failure_category; the KG
categories in tasks/kg/taxonomy.py, arithmetic word problems in tasks/math_taxonomy.py, reasoning-gym's in
tasks/reasoning_gym/taxonomy.py)."""

from __future__ import annotations

from tracestyle.tasks import task_of


def categorize(row: dict, problem: dict) -> str:
    """The rule-based failure category of an evaluated row ("correct" when it is right)."""
    return task_of(problem).failure_category(row, problem)
