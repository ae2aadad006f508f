"""Optional LLM-judge compliance: any OpenAI-compatible teacher, its own Jinja template, YES/NO verdicts."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from tracestyle.curate.teachers.openai_client import OpenAIConfig, OpenAITeacher
from tracestyle.prompts import BUILTIN_DIR, Register
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


def make_compliance_judge(registers: dict[str, Register], base_url: str, model: str, *, api_key_env: str,
                          template_dir: str | Path = BUILTIN_DIR, cache: str | Path | None = None):
    """A filter callback judging one row at a time; responses are cached like any teacher's."""
    judge_reg = Register("judge", "", Path(template_dir))
    cfg = OpenAIConfig(base_url=base_url, model=model, api_key_env=api_key_env, temperature=0.0, max_tokens=4, k=1)
    teacher = OpenAITeacher(cfg, cache or Path(tempfile.gettempdir()) / "tracestyle-judge-cache.jsonl")

    def judge(row: dict) -> Verdict:
        reg = registers.get(row.get("register", ""))
        if reg is None:
            return Verdict(False, "judge:unknown_register")
        prompt = judge_reg.render("judge_compliance.j2", register=reg.name, description=reg.description,
                                  text=row["text"])
        return parse_judgement(teacher.complete_all([[{"role": "user", "content": prompt}]])[0])

    return judge
