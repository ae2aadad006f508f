"""Refine a register from the student's own failures, round after round (`tracestyle refine`, `refine:` in a spec).

Round 0 trains and evaluates the start register. Each later round takes the failure categories where the student
fails most against the base model, adds the intervention that addresses the first of them (interventions.yaml), and
writes the next register version; the teacher regenerates, curation filters, the traces are cut to round 0's token
budget, the student's NLL of them is measured before training (a ceiling refuses changes that move the traces away
from what the student finds likely), and the student trains and is evaluated on the same held-out problems. The
loop stops after N rounds or at the first round that is not better than the last (paired test), and keeps the best.
Every step is a stage that skips itself when complete, so a rerun recomputes nothing and replays the same choices.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tracestyle.ablations.executors import run_job
from tracestyle.ablations.grid import FILTERS, _problems, heldout_n
from tracestyle.ablations.refine_config import RefineConfig
from tracestyle.ablations.spec import GridSpec
from tracestyle.ablations.token_match import match_budget
from tracestyle.curate.curate import CurateConfig, curate
from tracestyle.curate.generate import Teacher, generate
from tracestyle.curate.stats import count_tokens_fn
from tracestyle.distill.sft_hf import pick_device
from tracestyle.errors import InputError
from tracestyle.jsonl import read_jsonl, strip_meta, write_json, write_jsonl
from tracestyle.layout import cell_dir, eval_dir, nll_dir, refine_dir
from tracestyle.precision import cpu_facts, describe_cpu, resolve_precision
from tracestyle.prompts import Register, load_registers
from tracestyle.prompts.interventions import (
    Intervention,
    applied_ids,
    copy_register,
    intervention_files,
    load_interventions,
    write_version,
)
from tracestyle.reports.analysis import paired
from tracestyle.reports.report import write_report
from tracestyle.reports.stats import bootstrap_ci
from tracestyle.reports.taxonomy import categorize
from tracestyle.tasks import get_task

log_fn = print


@dataclass
class _Run:
    spec: GridSpec
    out: Path
    rc: RefineConfig
    train: list[dict]
    train_path: Path
    eval_path: Path
    quiet: bool
    budget: int | None = None
    versions: dict[str, dict] = field(default_factory=dict)     # name -> what preparing its data found


def run_refine(spec: GridSpec, out_dir: str | Path, quiet: bool = False) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    rc = RefineConfig.parse(spec.refine)
    spec = replace(spec, precision=resolve_precision(spec.precision, pick_device(spec.device)))
    if not quiet:
        log_fn(f"precision: {spec.precision} on {describe_cpu()}")
    tr, ev = _problems(spec, out)
    regs_dir = out / "registers"
    regs_dir.mkdir(exist_ok=True)
    start_name = rc.start or spec.registers[0]
    start = copy_register(load_registers([start_name], spec.registers_dir)[start_name], regs_dir)
    task = get_task(spec.task)
    library = load_interventions(task.template_set, intervention_files(spec.registers_dir, start),
                                 task.failure_categories)
    if not library:
        raise InputError(f"no interventions for task {spec.task} (template set {task.template_set}): add them in "
                         "interventions.yaml of your registers_dir (see tracestyle/prompts/interventions.yaml)",
                         field="refine")
    if rc.only:
        missing = [i for i in rc.only if i not in library]
        if missing:
            raise InputError(f"unknown intervention(s) {missing} for task {spec.task} (known: {', '.join(library)})",
                             field="refine.only")
        library = {k: v for k, v in library.items() if k in rc.only}
    run = _Run(spec, out, rc, [strip_meta(p) for p in read_jsonl(tr)], tr, ev, quiet)
    _write_spec(run, [start.name])
    info0 = _prepare(run, start)
    if not info0["rows"]:
        raise InputError(f"round 0: curation kept no trace of register '{start.name}' "
                         f"({_drop_summary(info0)}): nothing to train on", str(out / "curated" / start.name))
    spec = run.spec = replace(spec, token_budget=run.budget)
    for s in spec.students:
        _job(run, {"kind": "eval", "student": s, "adapter": None, "out": str(eval_dir(out, s, "base", 0))},
             info0, f"refine {s}: base model")
    used = [start.name]
    for s in spec.students:
        rounds = _refine_student(run, s, start, library)
        used += [r["register"] for r in rounds if r["register"] not in used]
        _write_spec(run, used)
    write_report(out)
    if not quiet:
        log_fn(f"refine done in {time.time() - t0:.0f} s: {out / 'report.html'}")
    return out


def _write_spec(run: _Run, versions: list[str]) -> None:
    """spec.json as the report reads it: every register version is a condition of the run."""
    d = {**asdict(run.spec), "registers": versions, "conditions": versions, "token_budget": run.budget or "matched",
         "registers_dir": str(run.out / "registers"), "teacher_name": run.spec.teacher_name(), "machine": cpu_facts(),
         "refine": asdict(run.rc)}
    write_json(run.out / "spec.json", d)


def _prepare(run: _Run, reg: Register) -> dict:
    """Generate, curate and token-match one register version's traces (shared by every student)."""
    if reg.name in run.versions:
        return run.versions[reg.name]
    out, spec = run.out, run.spec
    kind, ocfg = spec.teacher_config()
    generate(run.train, {reg.name: reg}, out / "gen" / reg.name, Teacher(kind, ocfg), inputs=[run.train_path],
             quiet=True)
    cdir = out / "curated" / reg.name
    curate(out / "gen" / reg.name / "traces.jsonl", cdir,
           CurateConfig(task=spec.task, filters=spec.filters or FILTERS, registers={reg.name: reg},
                        eval_path=run.eval_path), quiet=True)
    rows = [strip_meta(r) for r in read_jsonl(cdir / "kept.jsonl", allow_empty=True)]
    dropped = read_jsonl(cdir / "dropped.jsonl", allow_empty=True) if (cdir / "dropped.jsonl").exists() else []
    counts = count_tokens_fn(spec.students[0])([r["text"] for r in rows])
    if run.budget is None:
        # round 0 sets the budget every later round trains on: the spec's number, or all of round 0's traces
        tb = spec.token_budget
        run.budget = int(tb) if isinstance(tb, int) else sum(counts)
    chosen, rep = match_budget({reg.name: rows}, {reg.name: counts}, run.budget, spec.data_seed)
    ids = {id(r) for r in chosen[reg.name]}
    write_jsonl(out / "data" / f"{reg.name}.jsonl", chosen[reg.name])
    held = [r for r in rows if id(r) not in ids][:heldout_n(len(chosen[reg.name]))]
    if held:
        write_jsonl(out / "data" / f"{reg.name}.heldout.jsonl", held)
    tok_path = out / "data" / "tokens.json"
    tok = json.loads(tok_path.read_text()) if tok_path.exists() else {"registers": {}}
    tok.update(budget=run.budget, tolerance=rep["tolerance"])
    tok["registers"][reg.name] = rep["registers"][reg.name]
    tok["longest_trace_tokens"] = max([tok.get("longest_trace_tokens") or 0, *counts])
    write_json(tok_path, tok)
    reasons = Counter(x for r in dropped for x in (r.get("drop_reasons") or [r.get("reason", "?")]))
    texts = {r["problem_id"]: r["text"] for r in read_jsonl(out / "gen" / reg.name / "traces.jsonl", allow_empty=True)}
    info = {"generated": len(rows) + len(dropped), "kept": len(rows), "drops": dict(reasons.most_common()),
            "rows": rep["registers"][reg.name]["rows"], "tokens": rep["registers"][reg.name]["total"],
            "within": rep["registers"][reg.name]["within"], "longest": max(counts, default=0), "texts": texts}
    run.versions[reg.name] = info
    return info


def _drop_summary(info: dict) -> str:
    top = ", ".join(f"{k} {v}" for k, v in list(info["drops"].items())[:3])
    return f"kept {info['kept']} of {info['generated']}" + (f"; dropped for {top}" if top else "")


def _job(run: _Run, job: dict, info: dict, label: str) -> dict:
    spec = run.spec
    if spec.eval_max_new_tokens == "auto":
        # each version's evaluation leaves room for its own longest trace (a longer register must not be cut short)
        spec = replace(spec, eval_max_new_tokens=int(max(info["longest"], 32) * 1.25) + 16)
    return run_job(job, asdict(spec), str(run.eval_path), run.quiet, label=label)


def _train_eval(run: _Run, s: str, reg: Register, info: dict, k: int) -> None:
    out, spec = run.out, run.spec
    data = out / "data" / f"{reg.name}.jsonl"
    for seed in spec.seeds:
        cdir = cell_dir(out, s, reg.name, seed)
        held = data.with_name(f"{reg.name}.heldout.jsonl")
        tag = f"refine {s} round {k}/{run.rc.rounds}"
        _job(run, {"kind": "train", "student": s, "register": reg.name, "seed": seed, "data": str(data),
                   "out": str(cdir / "adapter"), "heldout": str(held)}, info, f"{tag}: train {reg.name}/seed{seed}")
        _job(run, {"kind": "eval", "student": s, "register": reg.name, "seed": seed, "adapter": str(cdir / "adapter"),
                   "out": str(eval_dir(out, s, reg.name, seed))}, info, f"{tag}: eval {reg.name}/seed{seed}")


def _nll(run: _Run, s: str, reg: Register, info: dict) -> float | None:
    sample = run.spec.nll_sample or 32
    _job(run, {"kind": "nll", "student": s, "register": reg.name, "sample": sample,
               "data": str(run.out / "curated" / reg.name / "kept.jsonl"), "out": str(nll_dir(run.out, s, reg.name))},
         info, f"refine {s}: NLL of {reg.name} before training")
    p = nll_dir(run.out, s, reg.name) / "nll.json"
    return json.loads(p.read_text()).get("nll") if p.exists() else None


def _evals(run: _Run, s: str, name: str) -> list[list[dict]]:
    seeds = [0] if name == "base" else run.spec.seeds
    return [sorted(read_jsonl(eval_dir(run.out, s, name, seed) / "eval.jsonl"), key=lambda r: r["problem_id"])
            for seed in seeds]


def _failures(evals: list[list[dict]], problems: dict) -> dict[str, float]:
    """Failure counts per category, averaged over seeds."""
    c = Counter(categorize(r, problems[r["problem_id"]]) for rows in evals for r in rows)
    c.pop("correct", None)
    return {k: v / len(evals) for k, v in c.most_common()}


def _vec(evals: list[list[dict]]) -> list[list[bool]]:
    return [[bool(r["correct"]) for r in rows] for rows in evals]


def _refine_student(run: _Run, s: str, start: Register, library: dict[str, Intervention]) -> list[dict]:
    out, rc = run.out, run.rc
    problems = {p["id"]: p for p in read_jsonl(run.eval_path)}
    base_fail = _failures(_evals(run, s, "base"), problems)
    teacher = "template" if run.spec.teacher_config()[0] == "template" else "llm"
    info = _prepare(run, start)
    nll0 = _nll(run, s, start, info)
    _train_eval(run, s, start, info, 0)
    rounds = [_record(run, s, 0, start, None, [], {}, info, nll0, [], problems)]
    _save(out, s, rounds)
    current, cur_nll = start, nll0
    tried: set[str] = set()
    for k in range(1, rc.rounds + 1):
        cur_fail = rounds_by_name(rounds, current.name)["failures"]
        ranked = sorted((c for c in cur_fail if cur_fail[c] > 0),
                        key=lambda c: (-(cur_fail[c] - base_fail.get(c, 0)), -cur_fail[c], c))
        if not ranked:
            rounds[-1]["stop"] = "no failures left to address"
            break
        targets = {c: {"count": cur_fail[c], "base": base_fail.get(c, 0)} for c in ranked}
        chosen, refused, version, vinfo, vnll = [], [], current, None, None
        cand_info = _prepare(run, current)
        for cat in ranked:
            for iv in library.values():
                if len(chosen) >= rc.per_round:
                    break
                if cat not in iv.addresses or iv.id in applied_ids(version) or iv.id in tried:
                    continue
                resolved = iv.for_register(start, teacher)
                if resolved is None:
                    continue
                tried.add(iv.id)
                trial = write_version(version, [resolved], out / "registers", round_no=k)
                tinfo = _prepare(run, trial)
                reason = _refusal(run, teacher, cand_info, tinfo)
                tnll = None
                if reason is None:
                    tnll = _nll(run, s, trial, tinfo)
                    if rc.max_nll_increase is not None and tnll is not None and cur_nll is not None and \
                            tnll - cur_nll > rc.max_nll_increase:
                        reason = f"NLL {cur_nll:.3f} -> {tnll:.3f} nats/token, above the ceiling " \
                                 f"(+{rc.max_nll_increase:g})"
                if reason:
                    refused.append({"id": iv.id, "for": cat, "reason": reason})
                    if not run.quiet:
                        log_fn(f"refine {s} round {k}: refused {iv.id} ({reason})")
                    continue
                chosen.append({**resolved, "for": cat})
                version, vinfo, vnll, cand_info = trial, tinfo, tnll, tinfo
            if len(chosen) >= rc.per_round:
                break
        if not chosen:
            rounds[-1]["stop"] = "no intervention left for the failing categories" + \
                (f" ({len(refused)} refused)" if refused else "")
            rounds[-1].setdefault("refused_next", refused)
            break
        _note(version, s, chosen, targets)
        _train_eval(run, s, version, vinfo, k)
        rec = _record(run, s, k, version, current, chosen, targets, vinfo, vnll, refused, problems,
                      prev=rounds_by_name(rounds, current.name), first=rounds[0], prev_nll=cur_nll)
        rounds.append(rec)
        _save(out, s, rounds)
        if not run.quiet:
            v = rec["vs_previous"]
            log_fn(f"refine {s} round {k}: +{', '.join(c['id'] for c in chosen)} -> accuracy "
                   f"{v['acc_a']:.3f} -> {v['acc_b']:.3f} ({100 * v['diff']:+.1f} points, p {v['p']:.2g}): "
                   f"{rec['status']}")
        if rec["status"] == "better":
            current, cur_nll = version, vnll
        elif rc.stop == "not_better":
            rec["stop"] = f"round {k} is not better than round {rounds_by_name(rounds, current.name)['round']}"
            break
    best = max(rounds, key=lambda r: (r["accuracy"], -r["round"]))
    for r in rounds:
        r["best"] = r is best
    _save(out, s, rounds)
    # the register to use from here on: its folder, and the adapter trained on it (first seed)
    write_json(refine_dir(out, s) / "best.json",
               {"student": s, "round": best["round"], "register": best["register"], "accuracy": best["accuracy"],
                "register_folder": str(out / "registers" / best["register"]),
                "adapter": str(cell_dir(out, s, best["register"], run.spec.seeds[0]) / "adapter")})
    return rounds


def rounds_by_name(rounds: list[dict], name: str) -> dict:
    return next(r for r in reversed(rounds) if r["register"] == name)


def _refusal(run: _Run, teacher: str, before: dict, after: dict) -> str | None:
    """Why a new version cannot be trained on, before any training: it changed nothing, or curation dropped what it
    kept before."""
    if teacher == "template" and after["texts"] == before["texts"]:
        return "no trace changed (the register's render template has no such slot, or the fragment is empty " \
               "on every problem)"
    if not after["rows"]:
        return f"curation kept no trace ({_drop_summary(after)})"
    share_before = before["kept"] / max(1, before["generated"])
    share = after["kept"] / max(1, after["generated"])
    if share < run.rc.min_kept_share * share_before:
        return f"curation kept {after['kept']} of {after['generated']} (before: {before['kept']} of " \
               f"{before['generated']}); {_drop_summary(after)}"
    return None


def _note(version: Register, student: str, chosen: list[dict], targets: dict) -> None:
    """The version's NOTE.md says why each student that chose it did."""
    note = version.folder / "NOTE.md"
    line = f"- chosen for {student}: " + "; ".join(
        f"{c['id']} for {c['for']} ({targets[c['for']]['count']:g} failures, base model "
        f"{targets[c['for']]['base']:g})" for c in chosen) + "\n"
    text = note.read_text() if note.exists() else ""
    if line not in text:
        note.write_text(text + line)


def _record(run: _Run, s: str, k: int, reg: Register, parent: Register | None, chosen: list[dict], targets: dict,
            info: dict, nll: float | None, refused: list[dict], problems: dict, *, prev: dict | None = None,
            first: dict | None = None, prev_nll: float | None = None) -> dict:
    ev = _evals(run, s, reg.name)
    vec = _vec(ev)
    acc, lo, hi = bootstrap_ci(vec)
    rec = {"student": s, "round": k, "register": reg.name, "version": reg.version,
           "parent": parent.name if parent else None,
           "added": [{"id": c["id"], "change": c["change"], "for": c["for"]} for c in chosen],
           "targets": targets, "accuracy": acc, "ci": [lo, hi], "failures": _failures(ev, problems),
           "nll": nll, "nll_change": None if nll is None or prev_nll is None else nll - prev_nll,
           "tokens": info["tokens"], "rows": info["rows"], "kept": info["kept"], "generated": info["generated"],
           "within_budget": info["within"], "refused": refused, "status": "round 0"}
    if prev is not None:
        pv = _vec(_evals(run, s, prev["register"]))
        rec["vs_previous"] = paired(pv, vec)
        rec["vs_round0"] = paired(_vec(_evals(run, s, first["register"])), vec)
        d = rec["vs_previous"]
        better = d["diff"] > 0 and (not run.rc.significant or d["p"] < run.rc.alpha)
        rec["status"] = "better" if better else "not better"
    return rec


def _save(out: Path, student: str, rounds: list[dict]) -> None:
    write_json(refine_dir(out, student) / "rounds.json", {"student": student, "rounds": rounds})
