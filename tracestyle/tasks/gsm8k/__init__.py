"""GSM8K: grade-school math word problems (MIT licence), scored by the final number."""

from __future__ import annotations

from tracestyle.answers.arithmetic import steps_verdict
from tracestyle.errors import InputError
from tracestyle.tasks.base import Task
from tracestyle.tasks.gsm8k.score import verify_number
from tracestyle.tasks.gsm8k.solution import gsm8k_solution
from tracestyle.tasks.gsm8k.source import load_gsm8k
from tracestyle.verdict import Verdict


class GSM8KTask(Task):
    name = "gsm8k"
    licence = ("mit", "MIT (GSM8K, OpenAI)")
    difficulty_key = "steps"
    answer_match = "all"

    def load_problems(self, *, split: str, n: int | None, seed: int, options: dict) -> list[dict]:
        if n is not None and n < 1:
            raise InputError("n must be at least 1", field="n")
        return load_gsm8k({"eval": "test"}.get(split, split), options.get("data"), n)

    def solution_context(self, problem: dict) -> dict:
        return gsm8k_solution(problem)

    def check_answer(self, problem: dict, text: str, *, truncated: bool | None = None) -> Verdict:
        return verify_number(text, problem["gold"], match=problem.get("answer_match", self.answer_match),
                             truncated=truncated)

    def check_trace(self, problem: dict, text: str) -> dict[str, Verdict]:
        return {"steps": steps_verdict(text)}

