"""Rewards for RL: plain functions over (problem, completion) built on the verifiers every other stage uses (the one
`score()`, the KG path check, the arithmetic step checker, register compliance), composable with weights.

A reward returns a float, or None where it does not apply to a problem (a KG path reward on a math problem);
TRL then leaves that row out of that reward. Users add their own by name (`REWARDS.add`) or give a dotted import
path ("mypkg.rewards.brevity").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from tracestyle.answers.arithmetic import check_steps
from tracestyle.answers.repetition import repeated_share
from tracestyle.curate.compliance import check_compliance
from tracestyle.errors import InputError
from tracestyle.registry import Registry
from tracestyle.tasks import score, task_of


@dataclass
class Completion:
    """What a reward sees beside the problem: the student's text (cut at its stop, end token removed), whether it
    ran into the token limit, its token count, and the register whose format it should follow (if any)."""
    text: str
    truncated: bool = False
    tokens: int = 0
    register_rules: dict | None = None


RewardFn = Callable[[dict, Completion], "float | None"]
REWARDS: Registry[RewardFn] = Registry("reward")


def answer_reward(problem: dict, c: Completion) -> float:
    """1 when the final answer is right (the one `score()`: evaluation's verdict), else 0."""
    return 1.0 if score(problem, c.text, truncated=c.truncated)["correct"] else 0.0


def kg_path_reward(problem: dict, c: Completion) -> float | None:
    """Partial credit per hop: the share of the question's gold hops that the trace asserts as valid KG edges,
    scaled by the share of asserted hops that are valid (an inverted or invented edge costs what it asserts)."""
    checks = task_of(problem).check_trace(problem, c.text)
    if "path" not in checks:
        return None
    d = checks["path"].details
    asserted = d.get("asserted", 0)
    if not asserted:
        return 0.0
    return float(d.get("gold_coverage", 0.0)) * d.get("valid_hops", 0) / asserted


def steps_reward(problem: dict, c: Completion) -> float | None:
    """The share of the trace's checked arithmetic statements that hold (every link of a chain counts); a trace
    that states no checkable arithmetic earns nothing. Applies where the task checks steps (math)."""
    if "steps" not in task_of(problem).check_trace(problem, ""):
        return None
    chk = check_steps(c.text)
    if not chk.checked:
        return 0.0
    return 1.0 - len(chk.errors) / chk.checked


def format_reward(problem: dict, c: Completion) -> float | None:
    """1 when the completion follows its register's compliance rules (the curate `compliance` filter), else 0."""
    if c.register_rules is None:
        return None
    return 1.0 if check_compliance(c.text, c.register_rules).ok else 0.0


def length_reward(problem: dict, c: Completion) -> float:
    """-1 for a completion that ran into the token limit without ending (a loop or a ramble), else 0."""
    return -1.0 if c.truncated else 0.0


def repetition_reward(problem: dict, c: Completion) -> float:
    """Minus the share of repeated lines and word 4-grams: loops score near -1, clean traces near 0."""
    return -repeated_share(c.text)


for _name, _fn in (("answer", answer_reward), ("kg_path", kg_path_reward), ("steps", steps_reward),
                   ("format", format_reward), ("length", length_reward), ("repetition", repetition_reward)):
    REWARDS.add(_name, _fn)


def _resolve(name: str) -> RewardFn:
    if name in REWARDS:
        return REWARDS.get(name)
    if "." in name:
        mod, _, attr = name.rpartition(".")
        try:
            fn = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as e:
            raise InputError(f"cannot import reward '{name}': {e}", field="reward") from None
        if callable(fn):
            return fn
    raise InputError(f"unknown reward '{name}' (known: {', '.join(sorted(REWARDS.names()))}, or a dotted "
                     "import path to a function(problem, completion))", field="reward")


def parse_rewards(spec: str | list) -> list[tuple[str, float, RewardFn]]:
    """"answer,kg_path:0.5" (or a list of such items) -> [(name, weight, fn)]; a weight defaults to 1."""
    items = spec if isinstance(spec, list) else str(spec).split(",")
    out, seen = [], set()
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        name, _, w = item.partition(":")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise InputError(f"weight of '{name}' must be a number, got {w!r}", field="reward") from None
        if name in seen:
            raise InputError(f"reward '{name}' given twice", field="reward")
        seen.add(name)
        out.append((name, weight, _resolve(name)))
    if not out:
        raise InputError("give at least one reward (e.g. answer, or answer,kg_path:0.5)", field="reward")
    if all(w == 0 for _, w, _ in out):
        raise InputError("every reward has weight 0: nothing to learn from", field="reward")
    return out


def reward_label(spec: str | list) -> str:
    """A short, file-safe name for a reward mix ("answer+kg_path0.5")."""
    return "-".join(n.rsplit(".", 1)[-1] + (f"{w:g}" if w != 1 else "") for n, w, _ in parse_rewards(spec))
