"""Rejection-sampling fine-tuning: sample k completions per train problem from the current student, score them
with the curate verifiers, keep the best correct one per problem (ties go to the shorter), fine-tune; repeat."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

from tracestyle.answers.repetition import repeated_share
from tracestyle.distill.config import RSFTConfig, TrainConfig
from tracestyle.distill.eval_vllm import VLLMGenerator
from tracestyle.distill.generation import Decoding, generate_batch, load_for_generation, trained_kind
from tracestyle.distill.pool import difficulty_matched
from tracestyle.distill.sft_hf import pick_device, train_hf
from tracestyle.errors import InputError
from tracestyle.jsonl import read_jsonl, strip_meta, write_jsonl
from tracestyle.manifest import is_complete, stage_key, write_manifest
from tracestyle.precision import resolve_precision, thread_budget
from tracestyle.tasks import point_at, score, task_of


def rsft_reward(problem: dict, text: str, *, truncated: bool | None = None) -> tuple[float, bool]:
    """+1 correct, -2 wrong or unparsable; where the task checks a path: +0.5 x gold-path coverage;
    minus the share of repeated text (loops score near -3)."""
    s = score(problem, text, truncated=truncated)
    r = 1.0 if s["correct"] else -2.0
    if isinstance(s.get("path"), dict):
        r += 0.5 * s["path"].get("gold_coverage", 0.0)
    return r - repeated_share(text), s["correct"]


def select_best(samples: list[dict]) -> dict | None:
    good = [s for s in samples if s["correct"]]
    if not good:
        return None
    return sorted(good, key=lambda s: (-s["reward"], len(s["text"])))[0]


def rsft_config(cfg: TrainConfig, **settings) -> dict:
    """The stage's skip key: the training config and every setting that changes the samples (a changed
    max_new_tokens or top_p must not return a stale run)."""
    return {**cfg.to_dict(), **settings}


def run_rsft(problems_path: str | Path, cfg: TrainConfig, out_dir: str | Path, rs: RSFTConfig | None = None, *,
             progress=None) -> dict:
    """Rounds of: sample k completions per train problem, keep the best correct one per problem, fine-tune.
    rs.match_difficulty: an eval problems file; the pool is then drawn (up to rs.pool_n) to follow its difficulty
    distribution, and any of its problems is removed from the pool. Without it, the first rs.pool_n problems."""
    rs = rs or RSFTConfig()
    rounds, k, init_adapter, temperature, top_p = rs.rounds, rs.k, rs.init_adapter, rs.temperature, rs.top_p
    max_new_tokens, batch_size, kg, match_difficulty = rs.max_new_tokens, rs.batch_size, rs.kg, rs.match_difficulty
    t0 = time.time()
    out = Path(out_dir)
    problems = read_jsonl(problems_path, required=("id", "question", "gold"))
    if kg:
        problems = point_at(problems, kg)
    for p in problems:
        task_of(p).prepare([p], where=str(problems_path))
    problems = [strip_meta(p) for p in problems]
    evals = [p for p in problems if p.get("split") == "eval"]
    if evals and not rs.allow_eval_leak:
        raise InputError(f"RSFT pool holds {len(evals)} eval-split problems; sampling and training on them leaks "
                         "the evaluation (pass --allow-eval-leak to do it anyway)", str(problems_path), None, "split")
    inputs = [problems_path] + ([match_difficulty] if match_difficulty else [])
    pool_report = None
    if match_difficulty:
        target = [strip_meta(p) for p in read_jsonl(match_difficulty, required=("id", "question"))]
        problems, pool_report = difficulty_matched(problems, target, rs.pool_n, cfg.seed)
        if not problems:
            raise InputError("no train problem is left at the evaluation's difficulty", str(problems_path))
    elif rs.pool_n:
        problems = problems[: rs.pool_n]       # the file's order: the train split is already a seeded draw
    conf = rsft_config(cfg, rounds=rounds, k=k, init_adapter=init_adapter, temperature=temperature, top_p=top_p,
                       max_new_tokens=max_new_tokens, batch_size=batch_size, kg=kg, allow_eval_leak=rs.allow_eval_leak,
                       match_difficulty=bool(match_difficulty), pool_n=rs.pool_n,
                       **({"sampler": rs.sampler} if rs.sampler != "hf" else {}))
    if is_complete(out, conf, inputs):
        return {"skipped": True}
    # finished rounds are reused on a rerun only when they were made with these very settings
    key, key_file = stage_key(conf, inputs), out / "rounds.key"
    if key_file.exists() and key_file.read_text().strip() != key:
        for old in out.glob("round-*"):
            shutil.rmtree(old, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key)
    adapter, history = init_adapter, []
    device = pick_device(cfg.device)
    for rnd in range(1, rounds + 1):
        rdir = out / f"round-{rnd}"
        if (rdir / "adapter" / "train_config.json").exists() and (rdir / "kept.jsonl").exists():   # LoRA or full
            adapter = str(rdir / "adapter")
            continue
        precision = resolve_precision(cfg.dtype, device)
        if rs.sampler == "vllm":
            # one vLLM call samples the whole pool: the engine starts once per round
            engine = VLLMGenerator(cfg.student, adapter, precision)
            batch_size = len(problems)
        else:
            model, tok = load_for_generation(cfg.student, adapter, device, precision)
        samples = []
        for s in range(0, len(problems), batch_size):
            batch = problems[s: s + batch_size]
            dec = Decoding(max_new_tokens, temperature, top_p=top_p, n=k, fmt=cfg.prompt_format,
                           seed=cfg.seed + rnd * 7919 + s)
            g = engine.generate([p["question"] for p in batch], dec) if rs.sampler == "vllm" else \
                generate_batch(model, tok, [p["question"] for p in batch], dec)
            for j, (text, cut) in enumerate(zip(g["texts"], g["truncated"])):
                p = batch[j // k]
                reward, ok = rsft_reward(p, text, truncated=cut)
                samples.append({"problem_id": p["id"], "question": p["question"], "text": text, "reward": reward,
                                "correct": ok, "split": p.get("split"), "round": rnd})
            if progress:
                progress(min(s + batch_size, len(problems)), len(problems))
        model = engine = None
        by_problem: dict[str, list[dict]] = {}
        for smp in samples:
            by_problem.setdefault(smp["problem_id"], []).append(smp)
        kept = [b for b in (select_best(v) for v in by_problem.values()) if b is not None]
        write_jsonl(rdir / "samples.jsonl", samples)
        write_jsonl(rdir / "kept.jsonl", kept)
        stat = {"round": rnd, "samples": len(samples), "problems_solved": len(kept),
                "sample_accuracy": sum(x["correct"] for x in samples) / max(1, len(samples))}
        if kept:
            train_hf(kept, cfg, rdir / "adapter.tmp", init_adapter=adapter)
            shutil.rmtree(rdir / "adapter", ignore_errors=True)
            (rdir / "adapter.tmp").rename(rdir / "adapter")
            adapter = str(rdir / "adapter")
        history.append(stat)
    if adapter and adapter != init_adapter:
        # the last round's weights become the stage's output: a LoRA adapter, or a whole model (`--full`)
        keep = ("adapter_*", "train_config.json") if trained_kind(adapter) == "lora" else \
            ("config.json", "generation_config.json", "model*.safetensors", "train_config.json")
        for pattern in keep:
            for f in Path(adapter).glob(pattern):
                shutil.copy2(f, out / f.name)
    counts = {"rounds": rounds, "history": history, "final_adapter": str(out) if adapter != init_adapter else None,
              "pool_splits": dict(Counter(p.get("split") for p in problems)), "pool_difficulty": pool_report,
              "threads": thread_budget()}
    write_manifest(out, "rsft", conf, inputs, counts, started=t0, extra={"eval_leak": bool(evals)})
    return {"skipped": False, **counts}
