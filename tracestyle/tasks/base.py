"""The task interface: what every stage needs from a task, so no stage branches on a task's name."""

from __future__ import annotations

from tracestyle.verdict import Verdict


class Task:
    """A task folder provides one subclass: its problem source, reference solution, answer scorer and any
    trace verifiers of its own (KG: the path)."""

    name: str = ""
    # which register templates render it (user_<templates>.j2, render_<templates>.j2); default: the task's name.
    # Tasks whose solutions have the generic shape (facts, goal, steps, answer) share "steps".
    templates: str = ""
    difficulty_key: str = ""        # the key of problem["difficulty"] that strata are reported by
    # several gold answers (a set): must an output name all of them, or any one? Problems may override it.
    answer_match: str = "all"
    # the source's licence on an exported dataset card: (the card's `license:` id, the sentence saying whose)
    licence: tuple[str, str] = ("other", "see the source data")

    # the trace corruptions that apply to this task's traces (curate/corrupt.py)
    corruptions: tuple[str, ...] = ("wrong_value", "wrong_value_propagated", "shuffle_steps", "delete_step")

    def step_unit(self, problem: dict):
        """A predicate on a sentence: does it state a step (the unit corruptions shuffle or delete)? By default
        a checked arithmetic statement."""
        from tracestyle.answers.arithmetic import line_statements

        return lambda s: any(ok for *_, ok in line_statements(s))

    def point_at(self, problems: list[dict], resource: str) -> list[dict]:
        """A later command's --kg (or another resource flag): the problems of this task that use such a resource
        resolve through the one given; others pass unchanged."""
        return problems

    def check_spec(self, spec, bad) -> None:
        """A grid spec's fields this task reads (a KG, a generator): `bad(field, message)` for each problem."""

    def corrupt(self, kind: str, row: dict, rng) -> tuple[str, dict] | None:
        """A corruption only this task knows (its kinds are in `corruptions` beside the shared ones): the new
        text and a record of the change, or None where it does not apply."""
        return None

    # every category failure_category can return (refine's interventions are checked against them)
    failure_categories: tuple[str, ...] = ("loop_degeneration", "no_answer", "arithmetic_error", "answer_overwriting",
                                           "relation_inversion", "aggregation_error", "forgotten_premise",
                                           "dropped_intermediate", "operation_omission")

    def failure_category(self, row: dict, problem: dict) -> str:
        """The rule-based failure category of an evaluated row ("correct" when right); by default the categories of
        arithmetic word problems (tasks/math_taxonomy.py)."""
        from tracestyle.tasks.math_taxonomy import numeric_category

        return numeric_category(row, problem)

    def split_note(self, spec: dict) -> str:
        """What the report says about how a grid spec drew its train and eval splits, beyond the task's name."""
        return ""

    @property
    def template_set(self) -> str:
        return self.templates or self.name

    def load_problems(self, *, split: str, n: int | None, seed: int, options: dict) -> list[dict]:
        raise NotImplementedError

    def solution_context(self, problem: dict) -> dict:
        """The known solution as template context (the template teacher renders it in each register)."""
        raise NotImplementedError

    def check_answer(self, problem: dict, text: str, *, truncated: bool | None = None) -> Verdict:
        raise NotImplementedError

    def check_trace(self, problem: dict, text: str) -> dict[str, Verdict]:
        """Task-specific verdicts on the reasoning itself, by name (KG: {"path": ...}); none by default."""
        return {}

    def prepare(self, problems: list[dict], *, where: str = "<problems>", need_trace_checks: bool = False) -> None:
        """Check up front that every problem can be scored (e.g. its KG resolves), naming file and line;
        need_trace_checks: the caller will run check_trace, so what it needs must be there too."""
