"""The difficulty filter GRPO needs on small students: a group whose completions all get the same reward has no
advantage and teaches nothing, so keep the problems the starting model solves in some but not all of k samples."""

from __future__ import annotations

from pathlib import Path

from tracestyle.distill.generation import Decoding, generate_batch, load_for_generation
from tracestyle.jsonl import write_json
from tracestyle.tasks import score


def solvable_only(problems: list[dict], cfg, rl, report: Path, *, device: str, batch: int = 8) -> tuple[list[dict], dict]:
    """(kept problems, counts). Samples with GRPO's own temperature, top-p and token limit."""
    model, tok = load_for_generation(cfg.student, rl.init_adapter, device, cfg.dtype)
    solved: list[int] = []
    for s in range(0, len(problems), batch):
        part = problems[s: s + batch]
        g = generate_batch(model, tok, [p["question"] for p in part],
                           Decoding(rl.max_new_tokens, rl.temperature, top_p=rl.top_p, n=rl.solvable_k,
                                    fmt=cfg.prompt_format, seed=cfg.seed + s))
        for i, p in enumerate(part):
            rows = range(i * rl.solvable_k, (i + 1) * rl.solvable_k)
            solved.append(sum(score(p, g["texts"][j], truncated=g["truncated"][j])["correct"] for j in rows))
    del model
    kept = [p for p, n in zip(problems, solved) if 0 < n < rl.solvable_k]
    counts = {"k": rl.solvable_k, "problems": len(problems), "kept": len(kept),
              "never_solved": sum(n == 0 for n in solved), "always_solved": sum(n == rl.solvable_k for n in solved)}
    write_json(report, counts)
    return kept, counts
