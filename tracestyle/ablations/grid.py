"""The grid runner: problems, one teacher pass per register, curation, token-matched register data, then
train/RSFT/eval jobs per cell through an executor, and the report. Each stage is skipped when its manifest
matches, so a rerun after an interruption redoes only unfinished stages."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

from tracestyle.ablations.executors import get_executor
from tracestyle.ablations.spec import GridSpec
from tracestyle.ablations.token_match import fill_and_swap, match_budget
from tracestyle.conditions import mix_name
from tracestyle.curate.corrupt import corrupt_row
from tracestyle.curate.curate import CurateConfig, curate
from tracestyle.curate.generate import Teacher, generate
from tracestyle.curate.stats import count_tokens_fn
from tracestyle.distill.sft_hf import pick_device
from tracestyle.jsonl import read_jsonl, safe_child, strip_meta, write_json, write_jsonl
from tracestyle.layout import cell_dir, eval_dir, nll_dir, transfer_dir
from tracestyle.precision import cpu_facts, describe_cpu, resolve_precision
from tracestyle.prompts import load_registers
from tracestyle.reports.report import write_report
from tracestyle.tasks import get_task

log_fn = print
HELDOUT_ROWS = 32


def heldout_n(trained_rows: int) -> int:
    """How many spare traces the held-out loss reads: up to 32, and no more than the condition trains on (at least
    8): its two passes are forward passes over these rows, and on a small set they cost more than the training."""
    return min(HELDOUT_ROWS, max(8, trained_rows))
# kg_path skips non-KG rows; steps passes a trace with no arithmetic in it (checked: 0)
FILTERS = ["length", "correct", "compliance", "dedup", "overlap", "kg_path", "steps"]


def _problems(spec: GridSpec, out: Path) -> tuple[Path, Path]:
    tr, ev = out / "problems" / "train.jsonl", out / "problems" / "eval.jsonl"
    if not (tr.exists() and ev.exists()):
        task = get_task(spec.task)
        for path, split, n in ((tr, "train", spec.train_n), (ev, "eval", spec.eval_n)):
            write_jsonl(path, task.load_problems(split=split, n=n, seed=spec.data_seed, options=spec.task_options()))
    return tr, ev


def rsft_pool(spec: GridSpec, out: Path, tr: Path) -> Path:
    """The problems RSFT samples: with rsft_pool matched, train-split problems at the evaluation's difficulty
    (KG: the eval hop range on train-side paths; the pool is then drawn to the eval histogram by run_rsft)."""
    if spec.rsft_pool == "train":
        return tr
    pool = out / "problems" / "rsft_pool.jsonl"
    if not pool.exists():
        opts = {**spec.task_options(), "train_hops": tuple(spec.eval_hops)}
        write_jsonl(pool, get_task(spec.task).load_problems(split="train", n=3 * spec.train_n,
                                                            seed=spec.data_seed + 1, options=opts))
    return pool


def _condition_rows(spec: GridSpec, rows: list[dict]) -> tuple[dict[str, list[dict]], dict]:
    """Rows per clean register and per corrupted register; what each corruption could not apply to is counted."""
    by = {reg: [r for r in rows if r["register"] == reg] for reg in spec.registers}
    skipped = {}
    for reg in spec.corruption_registers or spec.registers:
        for kind in spec.corruption:
            out = [corrupt_row(r, kind, spec.data_seed) for r in by[reg]]
            by[f"{reg}+{kind}"] = [r for r in out if r is not None]
            skipped[f"{reg}+{kind}"] = sum(r is None for r in out)
    return by, skipped


def _mix_rows(mix: dict, by: dict, counts: dict, budget: float, seed: int,
              tolerance: float = 0.01) -> tuple[list[dict], int]:
    """Each register its token share of the budget, then the rows that best fill what is left from any of them
    (short traces cannot hit a small share exactly), swapping within a register: the mix meets the budget like
    every other condition."""
    pool = [(x, c, r) for r in mix for x, c in zip(by[r], counts[r])]     # (row, tokens, register), by position
    chosen, rest, start = [], [], 0
    for r, share in mix.items():
        part = {id(x) for x in match_budget({r: by[r]}, {r: counts[r]}, round(share * budget), seed)[0][r]}
        here = range(start, start + len(by[r]))
        chosen += [i for i in here if id(pool[i][0]) in part]
        rest += [i for i in here if id(pool[i][0]) not in part]
        start += len(by[r])
    total = fill_and_swap(chosen, rest, lambda i: pool[i][1], budget, tolerance, max_swaps=50,
                          swappable=lambda i, j: pool[i][2] == pool[j][2])
    return [pool[i][0] for i in chosen], total


def _ordered(spec: GridSpec, rows: list[dict]) -> list[dict]:
    """Easy first (hops or steps, then the matched order) for a curriculum; the trainer keeps the file order."""
    if spec.curriculum != "easy_first":
        return rows
    key = get_task(spec.task).difficulty_key
    return sorted(rows, key=lambda r: (r.get("problem") or {}).get("difficulty", {}).get(key) or 0)


def register_data(spec: GridSpec, out: Path, curated: Path) -> dict[str, Path]:
    """Per-condition training files, token-matched when the spec asks; the match report goes to tokens.json.
    A mix takes each register's share of the budget from that register's traces."""
    rows = [strip_meta(r) for r in read_jsonl(curated, allow_empty=True)]
    by, skipped = _condition_rows(spec, rows)
    count = count_tokens_fn(spec.students[0])
    counts = {c: count([r["text"] for r in rs]) for c, rs in by.items()}
    report = {"budget": None, "registers": {c: {"total": sum(n), "rows": len(n)} for c, n in counts.items()}}
    left: dict[str, list[dict]] = {c: [] for c in by}
    if spec.token_budget != "none":
        budget = int(spec.token_budget) if spec.token_budget != "matched" else min(
            [sum(n) for n in counts.values()] +
            [sum(counts[r]) / share for m in spec.mix for r, share in m.items()])
        chosen, report = match_budget(by, counts, int(budget), spec.data_seed)
        for c in by:
            ids = {id(r) for r in chosen[c]}
            left[c] = [r for r in by[c] if id(r) not in ids]
        for m in spec.mix:
            name = mix_name(m)
            chosen[name], total = _mix_rows(m, by, counts, budget, spec.data_seed)
            cost = {id(x): n for r in m for x, n in zip(by[r], counts[r])}
            got = Counter()
            for row in chosen[name]:
                got[row["register"]] += cost[id(row)]
            report["registers"][name] = {
                "total": total, "rows": len(chosen[name]), "shares": m,
                "actual_shares": {r: round(got[r] / max(1, total), 3) for r in m},
                "within": abs(total - budget) <= report["tolerance"] * budget}
            left[name] = [row for r in m for row in left[r][: round(HELDOUT_ROWS * m[r])]]
        by = chosen
    for c, n in skipped.items():
        report["registers"][c]["corruption_skipped"] = n
    # evaluation must leave room for the longest trace any register was taught, or long registers are cut short
    report["longest_trace_tokens"] = max((max(n) for n in counts.values() if n), default=0)
    write_json(out / "data" / "tokens.json", report)
    paths = {}
    for c, rs in by.items():
        p = safe_child(out, f"data/{c}.jsonl")
        write_jsonl(p, _ordered(spec, rs))
        paths[c] = p
        # traces outside the budget: the held-out loss on the register's own (clean) style, without touching the
        # match; a corrupted condition is held out on its clean register's traces
        held = safe_child(out, f"data/{c}.heldout.jsonl")
        spare = left[c.split("+")[0]] if "+" in c else left[c]
        if spare:
            write_jsonl(held, spare[:heldout_n(len(rs))])
        else:
            held.unlink(missing_ok=True)
    return paths


def cells(spec: GridSpec) -> list[dict]:
    return [{"student": s, "register": r, "seed": seed} for s in spec.students for r in spec.conditions()
            for seed in spec.seeds]


def grid_jobs(spec: GridSpec, out: Path, data: dict[str, Path], train_problems: Path) -> list[dict]:
    jobs = [{"kind": "eval", "student": s, "adapter": None, "out": str(eval_dir(out, s, "base", 0))}
            for s in spec.students]
    # a condition nothing survived curation for is not trained: tokens.json and the report say so
    trainable = {c for c, p in data.items() if p.stat().st_size > 0}
    if spec.nll_sample and spec.sft_trained():
        # each student's view of each condition before any training: a forward pass, no weights change
        jobs += [{"kind": "nll", "student": s, "register": c, "data": str(data[c]), "sample": spec.nll_sample,
                  "out": str(nll_dir(out, s, c))} for s in spec.students for c in spec.conditions() if c in trainable]
    for c in cells(spec) if spec.sft_trained() else []:
        if c["register"] not in trainable:
            continue
        cdir = cell_dir(out, c["student"], c["register"], c["seed"])
        jobs.append({"kind": "train", **c, "data": str(data[c["register"]]), "out": str(cdir / "adapter"),
                     "heldout": str(data[c["register"]].with_name(f"{c['register']}.heldout.jsonl"))})
        adapter = cdir / "adapter"
        if spec.recipe == "sft+rsft":
            jobs.append({"kind": "rsft", **c, "problems": str(rsft_pool(spec, out, train_problems)),
                         "init": str(adapter), "out": str(cdir / "rsft"),
                         "match_difficulty": str(out / "problems" / "eval.jsonl") if spec.rsft_pool == "matched"
                         else None})
            adapter = cdir / "rsft"
        jobs.append({"kind": "eval", **c, "adapter": str(adapter),
                     "out": str(eval_dir(out, c["student"], c["register"], c["seed"]))})
    jobs += rl_jobs(spec, out, trainable, train_problems)
    return jobs + transfer_jobs(spec, out, jobs)


def rl_jobs(spec: GridSpec, out: Path, trainable: set, train_problems: Path) -> list[dict]:
    """Per variant, student, seed and starting point (a register's SFT adapter, or the base model): GRPO on the
    train-split problems, or RSFT on the pool the sft+rsft recipe samples; then its evaluation on the same held-out
    problems as every other cell."""
    jobs = []
    for v in spec.rl_variants():
        starts = [("base", None)] if v["from"] == "base" else [(r, r) for r in spec.registers if r in trainable]
        for s in spec.students:
            for seed in spec.seeds:
                for start, reg in starts:
                    cond = f"{start}@{v['name']}"
                    cdir = cell_dir(out, s, cond, seed)
                    init = str(cell_dir(out, s, reg, seed) / "adapter") if reg else None
                    if v["method"] == "rsft":
                        stage = cdir / "rsft"
                        jobs.append({"kind": "rsft", "student": s, "register": cond, "seed": seed,
                                     "problems": str(rsft_pool(spec, out, train_problems)), "init": init,
                                     "start_register": reg, "out": str(stage), "k": v.get("k", spec.rsft_k),
                                     "pool_n": v.get("pool_n", spec.train_n),
                                     "match_difficulty": str(out / "problems" / "eval.jsonl")
                                     if spec.rsft_pool == "matched" else None})
                    else:
                        stage = cdir / "rl"
                        jobs.append({"kind": "rl", "student": s, "register": cond, "seed": seed,
                                     "reward": v["reward"], "problems": str(train_problems), "init": init,
                                     "start_register": reg, "out": str(stage)})
                    jobs.append({"kind": "eval", "student": s, "register": cond, "seed": seed,
                                 "adapter": str(stage), "out": str(eval_dir(out, s, cond, seed))})
    return jobs


def transfer_jobs(spec: GridSpec, out: Path, jobs: list[dict]) -> list[dict]:
    """Every evaluated cell (the base models included) again on each transfer set."""
    extra = []
    for t in spec.transfer:
        problems = transfer_problems(spec, out, t)
        for j in (j for j in jobs if j["kind"] == "eval"):
            reg, seed = j.get("register", "base"), j.get("seed", 0)
            extra.append({**j, "problems": str(problems), "transfer": t["name"],
                          "out": str(transfer_dir(out, j["student"], reg, seed, t["name"]))})
    return extra


def transfer_problems(spec: GridSpec, out: Path, t: dict) -> Path:
    path = safe_child(out, f"problems/transfer-{t['name']}.jsonl")
    if not path.exists():
        opts = {**spec.task_options(), **{k: v for k, v in t.items() if k not in ("name", "task")}}
        if isinstance(opts.get("eval_hops"), list):
            opts["eval_hops"] = tuple(opts["eval_hops"])
        write_jsonl(path, get_task(t["task"]).load_problems(split="eval", n=spec.transfer_n, seed=spec.data_seed,
                                                            options=opts))
    return path


def run_grid(spec: GridSpec, out_dir: str | Path, quiet: bool = False) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    # one precision for every cell, fixed before any of them runs; spec.json and every manifest record it
    spec = replace(spec, precision=resolve_precision(spec.precision, pick_device(spec.device)))
    if not quiet:
        log_fn(f"precision: {spec.precision} on {describe_cpu()}")
    conds = (spec.conditions() if spec.sft_trained() else []) + spec.rl_conditions()
    write_json(out / "spec.json", {**asdict(spec), "conditions": conds, "teacher_name": spec.teacher_name(),
                                   "machine": cpu_facts()})
    tr, ev = _problems(spec, out)
    registers = load_registers(spec.registers, spec.registers_dir)
    train_problems = [strip_meta(p) for p in read_jsonl(tr)]
    # one teacher pass per register, shared by every student and seed
    kind, ocfg = spec.teacher_config()
    generate(train_problems, registers, out / "gen", Teacher(kind, ocfg), inputs=[tr], quiet=quiet)
    curate(out / "gen" / "traces.jsonl", out / "curated",
           CurateConfig(task=spec.task, filters=spec.filters or FILTERS, registers=registers, eval_path=ev), quiet=True)
    data = register_data(spec, out, out / "curated" / "kept.jsonl")
    if spec.eval_max_new_tokens == "auto":
        longest = json.loads((out / "data" / "tokens.json").read_text()).get("longest_trace_tokens") or 128
        spec = replace(spec, eval_max_new_tokens=int(longest * 1.25) + 16)
    jobs = grid_jobs(spec, out, data, tr)
    results = get_executor(spec.executor)(jobs, spec, str(ev), quiet)
    # which process ran each job: the executor's own record, kept beside the results
    write_jsonl(out / "jobs.jsonl", [{"kind": j["kind"], "out": j["out"], "executor": spec.executor,
                                      "skipped": bool(r.get("skipped")), "worker_pid": r.get("worker_pid"),
                                      "driver_pid": os.getpid(), "workers": r.get("workers"),
                                      "threads": r.get("threads")} for j, r in zip(jobs, results)])
    write_report(out)
    if not quiet:
        log_fn(f"grid done in {time.time() - t0:.0f} s: {out / 'report.html'}")
    return out
