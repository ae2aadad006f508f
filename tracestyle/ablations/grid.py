"""Grid specs and the local runner: task x registers x students x seeds, each stage run once and skipped when
its manifest matches (a rerun after an interruption redoes only unfinished cells)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from tracestyle.errors import InputError
from tracestyle.jsonl import read_jsonl, write_jsonl

log_fn = print


@dataclass
class GridSpec:
    task: str = "kg"
    domain: str = "devops"
    registers: list[str] = field(default_factory=lambda: ["normal", "gold", "titanium", "diamond"])
    students: list[str] = field(default_factory=lambda: ["smollm2-135m"])
    seeds: list[int] = field(default_factory=lambda: [0])
    recipe: str = "sft"                 # sft | sft+rsft
    teacher: str = "template"
    train_hops: list[int] = field(default_factory=lambda: [1, 3])
    eval_hops: list[int] = field(default_factory=lambda: [4, 5])
    train_n: int = 300
    eval_n: int = 100
    data_seed: int = 0
    token_budget: str | int = "none"    # none | matched | an integer budget
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    eval_max_new_tokens: int = 160
    eval_batch_size: int = 16
    rsft_k: int = 4
    executor: str = "local"

    @classmethod
    def load(cls, path: str | Path) -> GridSpec:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "context_mark", None) or getattr(e, "problem_mark", None)
            raise InputError(f"malformed YAML: {getattr(e, 'problem', e)}", str(p),
                             mark.line + 1 if mark else None) from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read: {e}", str(p)) from None
        if not isinstance(data, dict):
            raise InputError("expected a mapping", str(p), 1)
        known = {f.name for f in fields(cls)}
        for k in data:
            if k not in known:
                raise InputError("unknown key", str(p), _line(p, k), k)
        spec = cls(**data)
        spec.validate(str(p))
        return spec

    def validate(self, where: str = "<spec>") -> None:
        def bad(key, msg):
            raise InputError(msg, where, _line(Path(where), key) if Path(where).exists() else None, key)
        if self.task not in ("kg", "gsm8k"):
            bad("task", f"unknown task '{self.task}' (kg, gsm8k)")
        if not self.registers:
            bad("registers", "needs at least one register")
        if not self.students:
            bad("students", "needs at least one student")
        from tracestyle.distill.models import load_preset
        for st in self.students:
            try:
                load_preset(st)
            except InputError as e:
                bad("students", str(e))
        from tracestyle.prompts import BUILTIN_REGISTERS
        for r in self.registers:
            if r not in BUILTIN_REGISTERS:
                bad("registers", f"unknown register '{r}' (known: {', '.join(BUILTIN_REGISTERS)})")
        if not self.seeds or not all(isinstance(x, int) and not isinstance(x, bool) for x in self.seeds):
            bad("seeds", f"must be a non-empty list of integers, got {self.seeds!r}")
        for k in ("train_n", "eval_n", "eval_max_new_tokens", "eval_batch_size"):
            if not isinstance(getattr(self, k), int) or getattr(self, k) < 1:
                bad(k, f"must be a positive integer, got {getattr(self, k)!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            bad("steps", f"must be a positive integer, got {self.steps!r}")
        for k in ("train_hops", "eval_hops"):
            v = getattr(self, k)
            if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v) and 1 <= v[0] <= v[1]):
                bad(k, f"must be [lo, hi] with 1 <= lo <= hi, got {v!r}")
        if self.recipe not in ("sft", "sft+rsft"):
            bad("recipe", f"unknown recipe '{self.recipe}' (sft, sft+rsft)")
        if self.executor not in ("local", "ray"):
            bad("executor", f"unknown executor '{self.executor}' (local, ray)")
        tb = self.token_budget
        if not (tb in ("none", "matched") or (isinstance(tb, int) and not isinstance(tb, bool) and tb > 0)):
            bad("token_budget", f"must be none, matched or a positive integer, got {self.token_budget!r}")


def _line(path: Path, key: str) -> int | None:
    try:
        for i, ln in enumerate(path.read_text().splitlines(), 1):
            if ln.lstrip().startswith(f"{key}:"):
                return i
    except OSError:
        pass
    return None


def _problems(spec: GridSpec, out: Path) -> tuple[Path, Path]:
    from tracestyle.curate.gsm8k import load_gsm8k
    from tracestyle.curate.kg_questions import generate_kg_problems

    tr, ev = out / "problems" / "train.jsonl", out / "problems" / "eval.jsonl"
    if not (tr.exists() and ev.exists()):
        if spec.task == "kg":
            ranges = {"train": tuple(spec.train_hops), "eval": tuple(spec.eval_hops)}
            write_jsonl(tr, generate_kg_problems(spec.domain, "train", spec.train_n, spec.data_seed, ranges))
            write_jsonl(ev, generate_kg_problems(spec.domain, "eval", spec.eval_n, spec.data_seed, ranges))
        else:
            write_jsonl(tr, load_gsm8k("train", None, spec.train_n))
            write_jsonl(ev, load_gsm8k("test", None, spec.eval_n))
    return tr, ev


def register_data(spec: GridSpec, out: Path, curated: Path) -> dict[str, Path]:
    """Per-register training files, token-matched when the spec asks; the match report goes to tokens.json."""
    from tracestyle.ablations.token_match import match_budget
    from tracestyle.curate.stats import count_tokens_fn
    from tracestyle.jsonl import safe_child, strip_meta, write_json

    rows = [strip_meta(r) for r in read_jsonl(curated, allow_empty=True)]
    by = {reg: [r for r in rows if r["register"] == reg] for reg in spec.registers}
    count = count_tokens_fn(spec.students[0])
    counts = {reg: count([r["text"] for r in rs]) for reg, rs in by.items()}
    report = {"budget": None, "registers": {reg: {"total": sum(c), "rows": len(c)} for reg, c in counts.items()}}
    if spec.token_budget != "none":
        budget = None if spec.token_budget == "matched" else int(spec.token_budget)
        by, report = match_budget(by, counts, budget, spec.data_seed)
    write_json(out / "data" / "tokens.json", report)
    paths = {}
    for reg, rs in by.items():
        p = safe_child(out, f"data/{reg}.jsonl")
        write_jsonl(p, rs)
        paths[reg] = p
    return paths


def cell_dir(out: Path, student: str, register: str, seed: int | None = None) -> Path:
    """A cell's folder; names become path parts safely (hub ids keep their meaning, '..' cannot escape)."""
    from tracestyle.jsonl import safe_child

    parts = [student.replace("/", "__"), register] + ([f"seed{seed}"] if seed is not None else [])
    return safe_child(out, "/".join(["cells", *parts]))


def eval_dir(out: Path, student: str, register: str, seed: int) -> Path:
    """Where a cell's evaluation lives; the base model is evaluated once per student, whatever the seed."""
    return (cell_dir(out, student, "base") if register == "base" else cell_dir(out, student, register, seed)) / "eval"


def cells(spec: GridSpec) -> list[dict]:
    return [{"student": s, "register": r, "seed": seed} for s in spec.students for r in spec.registers
            for seed in spec.seeds]


def run_grid(spec: GridSpec, out_dir: str | Path, quiet: bool = False) -> Path:
    from tracestyle.ablations.executors import get_executor
    from tracestyle.curate.curate import curate
    from tracestyle.curate.generate import generate
    from tracestyle.prompts import load_registers

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    from tracestyle.jsonl import write_json
    write_json(out / "spec.json", asdict(spec))
    tr, ev = _problems(spec, out)
    registers = load_registers(spec.registers)
    train_problems = [r for r in read_jsonl(tr)]
    # one teacher pass per register, shared by every student and seed
    generate([{k: v for k, v in p.items() if k != "__line__"} for p in train_problems], registers, out / "gen",
             spec.teacher, inputs=[tr], quiet=True)
    filters = ["length", "correct", "compliance", "dedup", "overlap"] + (["kg_path"] if spec.task == "kg" else [])
    curate(out / "gen" / "traces.jsonl", out / "curated", spec.task, filters, registers, eval_path=ev, quiet=True)
    data = register_data(spec, out, out / "curated" / "kept.jsonl")
    jobs = [{"kind": "eval", "student": s, "adapter": None, "out": str(eval_dir(out, s, "base", 0))}
            for s in spec.students]
    for c in cells(spec):
        cdir = cell_dir(out, c["student"], c["register"], c["seed"])
        jobs.append({"kind": "train", **c, "data": str(data[c["register"]]), "out": str(cdir / "adapter")})
        adapter = cdir / "adapter"
        if spec.recipe == "sft+rsft":
            jobs.append({"kind": "rsft", **c, "problems": str(tr), "init": str(adapter), "out": str(cdir / "rsft")})
            adapter = cdir / "rsft"
        jobs.append({"kind": "eval", **c, "adapter": str(adapter),
                     "out": str(eval_dir(out, c["student"], c["register"], c["seed"]))})
    get_executor(spec.executor)(jobs, spec, str(ev), quiet)
    from tracestyle.reports.report import write_report
    write_report(out)
    if not quiet:
        log_fn(f"grid done in {time.time() - t0:.0f} s: {out / 'report.html'}")
    return out
