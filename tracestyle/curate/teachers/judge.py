"""Optional LLM-judge compliance: any OpenAI-compatible teacher, its own Jinja template, YES/NO verdicts."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from tracestyle.curate.teachers.openai_client import OpenAIConfig, OpenAITeacher
from tracestyle.prompts import BUILTIN_DIR, Register, Templates
from tracestyle.verdict import Verdict

_YES = re.compile(r"^\W*(yes)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(no)\b", re.IGNORECASE)


def parse_judgement(reply: str | None) -> Verdict:
    if reply is None:
        return Verdict(False, "judge:failed_request")
    if _YES.search(reply):
        return Verdict(True, "ok", "YES")
    if _NO.search(reply):
        return Verdict(False, "judge:noncompliant", "NO")
    return Verdict(False, "judge:unparsable", reply[:40])


class ComplianceJudge:
    """The LLM compliance judge as a filter callback. `prefetch` judges every row in one batch through the async
    teacher client (concurrency, retries, rate limits), with its cache in the curate output folder; a row it did
    not see is judged alone."""

    def __init__(self, registers: dict[str, Register], base_url: str, model: str, *, api_key_env: str,
                 template_dir: str | Path = BUILTIN_DIR, concurrency: int = 8) -> None:
        self.registers = registers
        self.template = Templates(Path(template_dir), "the judge folder")
        self.cfg = OpenAIConfig(base_url=base_url, model=model, api_key_env=api_key_env, temperature=0.0,
                                max_tokens=4, k=1, concurrency=concurrency)
        self.cache_path: Path | None = None
        self.verdicts: dict[str, Verdict] = {}
        self.requests = 0

    def _prompt(self, row: dict) -> str | None:
        reg = self.registers.get(row.get("register", ""))
        if reg is None:
            return None
        return self.template.render("judge_compliance.j2", register=reg.name, description=reg.description,
                                    text=row["text"])

    def _ask(self, prompts: list[str]) -> None:
        todo = sorted({p for p in prompts if p not in self.verdicts})
        if not todo:
            return
        teacher = OpenAITeacher(self.cfg, self.cache_path or Path(tempfile.mkdtemp()) / "judge_cache.jsonl")
        replies = teacher.complete_all([[{"role": "user", "content": p}] for p in todo])
        self.requests += teacher.stats.requests
        self.verdicts.update({p: parse_judgement(r) for p, r in zip(todo, replies)})

    def prefetch(self, rows: list[dict], cache_path: str | Path) -> None:
        self.cache_path = Path(cache_path)
        self._ask([p for p in (self._prompt(r) for r in rows) if p is not None])

    def __call__(self, row: dict) -> Verdict:
        prompt = self._prompt(row)
        if prompt is None:
            return Verdict(False, "judge:unknown_register")
        self._ask([prompt])
        return self.verdicts[prompt]


def make_compliance_judge(registers: dict[str, Register], base_url: str, model: str, *,
                          api_key_env: str, template_dir: str | Path = BUILTIN_DIR) -> ComplianceJudge:
    return ComplianceJudge(registers, base_url, model, api_key_env=api_key_env, template_dir=template_dir)
