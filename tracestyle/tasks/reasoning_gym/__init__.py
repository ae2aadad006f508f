"""reasoning-gym (Apache-2.0): procedural reasoning tasks (family_relationships, shortest_path, gsm_symbolic, ...),
each answer scored by the generator's own verifier."""

from __future__ import annotations

from tracestyle.answers.arithmetic import steps_verdict
from tracestyle.answers.extract import extract_marked, last_line
from tracestyle.answers.numbers import all_numbers, format_number, numbers_equal, parse_number
from tracestyle.errors import InputError
from tracestyle.tasks.base import Task
from tracestyle.tasks.reasoning_gym.solution import reference_solution
from tracestyle.tasks.reasoning_gym.source import dataset_names, load_rg, score_fn
from tracestyle.verdict import Verdict


class ReasoningGymTask(Task):
    name = "reasoning_gym"
    templates = "steps"
    difficulty_key = "steps"

    def load_problems(self, *, split: str, n: int | None, seed: int, options: dict) -> list[dict]:
        if n is not None and n < 1:
            raise InputError("n must be at least 1", field="n")
        return load_rg(options.get("rg_dataset"), split, 100 if n is None else n, seed, options.get("rg_config"))

    def solution_context(self, problem: dict) -> dict:
        sol = reference_solution(problem["rg_dataset"], problem["rg_entry"])
        if sol is None:
            raise InputError(f"the template teacher has no reference solution for reasoning-gym dataset "
                             f"'{problem['rg_dataset']}' (its metadata carries no chain of thought): use an LLM "
                             "teacher (--teacher openai)", field="rg_dataset")
        return {"question": problem["question"], **sol}

    def check_answer(self, problem: dict, text: str, *, truncated: bool | None = None) -> Verdict:
        raw, how = extract_marked(text, truncated=truncated)
        if raw is None:
            # reasoning-gym's own convention is the bare answer; the last line stands for it
            raw, how = (last_line(text, truncated=truncated) or "").strip(), "last_line"
        if not raw:
            return Verdict(False, "no_answer", None, {"extractor": "none"})
        entry = problem["rg_entry"]
        verify = score_fn(problem["rg_dataset"])
        try:
            score = float(verify(raw, entry))
            gold = parse_number(str(entry["answer"]))
            nums = all_numbers(raw)
            if score < 1.0 and gold is not None and len(nums) == 1 and numbers_equal(nums[0], gold):
                # "$288", "288 apples" or "288.0" for gold "288": the verifier compares strings, we compare numbers
                score = float(verify(format_number(nums[0]), entry))
        except Exception as e:  # noqa: BLE001  (one model output must not end a whole evaluation)
            return Verdict(False, "verifier_error", raw[:100], {"extractor": how, "error": f"{type(e).__name__}: {e}"})
        ok = score >= 1.0
        return Verdict(ok, "ok" if ok else "wrong_answer", raw[:100], {"extractor": how, "rg_score": score})

    def check_trace(self, problem: dict, text: str) -> dict[str, Verdict]:
        if any(s.get("calcs") for s in problem.get("steps") or []):
            return {"steps": steps_verdict(text)}
        return {}

    def prepare(self, problems: list[dict], *, where: str = "<problems>", need_trace_checks: bool = False) -> None:
        known = set(dataset_names())
        for p in problems:
            line = p.get("__line__")
            if p.get("rg_dataset") not in known:
                raise InputError(f"unknown reasoning-gym dataset {p.get('rg_dataset')!r}", where, line, "rg_dataset")
            entry = p.get("rg_entry")
            if not isinstance(entry, dict) or not isinstance(entry.get("metadata"), dict) or "answer" not in entry:
                raise InputError("needs the generator's entry (question, answer, metadata) to be scored",
                                 where, line, "rg_entry")

