"""Optional LLM-judge failure labels for what rules cannot see (scope confusion, misread wording...).
Categories come from a YAML taxonomy; labels go to judge_labels.jsonl beside eval.jsonl, apart from rule labels."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tracestyle.curate.teachers.openai_client import OpenAIConfig, OpenAITeacher
from tracestyle.errors import InputError
from tracestyle.jsonl import write_jsonl
from tracestyle.prompts import Templates

DEFAULT_TAXONOMY = Path(__file__).with_name("taxonomy.yaml")


def load_taxonomy(path: str | Path = DEFAULT_TAXONOMY) -> dict[str, str]:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read taxonomy: {str(e).splitlines()[0]}", str(p)) from None
    cats = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(cats, dict) or not cats or not all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in cats.items()):
        raise InputError("expected 'categories:' mapping names to descriptions", str(p), None, "categories")
    return cats


def parse_label(reply: str | None, categories: dict[str, str]) -> str:
    if reply is None:
        return "judge_failed"
    words = re.findall(r"[a-z_]+", reply.lower())
    for w in words:
        if w in categories:
            return w
    return "unparsable"


def label_evals(evals: list[tuple[Path, list[dict]]], problems: dict[str, dict], *, base_url: str, model: str,
                api_key_env: str = "OPENAI_API_KEY", taxonomy: str | Path = DEFAULT_TAXONOMY,
                template_dir: str | Path | None = None, cache: str | Path) -> int:
    """Label the wrong answers of several evaluations (eval folder, its eval.jsonl rows) in one batch through the
    async teacher client; each folder gets its judge_labels.jsonl. Correct rows are not sent."""
    cats = load_taxonomy(taxonomy)
    reg = Templates(Path(template_dir) if template_dir else Path(__file__).parent, "the judge folder")
    todo = [(d, r) for d, rows in evals for r in rows if not r["correct"]]
    msgs = []
    for _, r in todo:
        p = problems[r["problem_id"]]
        msgs.append([{"role": "user", "content": reg.render("judge_prompt.j2", question=p["question"], gold=p["gold"],
                                                            output=r["output"], categories=cats)}])
    cfg = OpenAIConfig(base_url=base_url, model=model, api_key_env=api_key_env, temperature=0.0, max_tokens=8)
    replies = OpenAITeacher(cfg, cache).complete_all(msgs) if msgs else []
    for d, _ in evals:
        labels = [{"problem_id": r["problem_id"], "judge_label": parse_label(t, cats), "judge_reply": (t or "")[:80]}
                  for (dd, r), t in zip(todo, replies) if dd == d]
        write_jsonl(Path(d) / "judge_labels.jsonl", labels)
    return len(todo)
