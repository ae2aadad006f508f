"""Grid specs: task x registers x students x seeds (x token budget), loaded from YAML with errors that name the
file, line and key."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from tracestyle.conditions import mix_name
from tracestyle.curate.corrupt import KINDS
from tracestyle.curate.teachers.openai_client import OpenAIConfig
from tracestyle.distill.models import load_preset
from tracestyle.errors import InputError
from tracestyle.precision import normalise
from tracestyle.prompts import load_registers
from tracestyle.tasks import TASKS, get_task
from tracestyle.yamlfile import key_line, load_yaml

TEACHER_KEYS = {"kind", "base_url", "model", "api_key_env", "temperature", "top_p", "k", "max_tokens", "concurrency",
                "rpm", "tpm", "timeout", "max_retries", "seed"}


@dataclass
class GridSpec:
    task: str = "kg"
    kg: str = "devops"                  # KG tasks: a built-in name or a KG .json (relative to the spec file)
    registers: list[str] = field(default_factory=lambda: ["normal", "gold", "titanium", "diamond"])
    registers_dir: str | None = None    # a folder of your own register folders (relative to the spec file)
    students: list[str] = field(default_factory=lambda: ["smollm2-135m"])
    seeds: list[int] = field(default_factory=lambda: [0])
    recipe: str = "sft"                 # sft | sft+rsft
    # template, or a mapping for an LLM behind any OpenAI-compatible server (vLLM, llama.cpp, a hosted API):
    # {kind: openai, base_url, model, api_key_env, temperature, k, max_tokens, concurrency, rpm}
    teacher: str | dict = "template"
    train_hops: list[int] = field(default_factory=lambda: [1, 3])
    eval_hops: list[int] = field(default_factory=lambda: [4, 5])
    rg_dataset: str | None = None       # reasoning_gym: the generator, e.g. family_relationships
    rg_config: dict = field(default_factory=dict)   # reasoning_gym: the generator's options
    pw_dir: str | None = None           # phantomwiki: a PhantomWiki folder you bring (default: generated per split)
    pw_size: int = 26                   # phantomwiki: people per family tree when generating
    pw_depth: int = 10                  # phantomwiki: question template depth (10: 1-4 hops)
    answer_sets: bool = False           # KG: also ask questions whose answer is any of a set
    distractors: int | None = None      # KG: distractor facts beside the path's (default: hops + 2)
    train_n: int = 300
    eval_n: int = 100
    data_seed: int = 0
    token_budget: str | int = "none"    # none | matched | an integer budget
    steps: int | None = None            # with a token budget, each register trains `epochs` over its matched set
    epochs: int = 1
    batch_size: int | None = None
    lr: float | None = None
    eval_max_new_tokens: int | str = "auto"   # auto: the longest trained trace x 1.25 + 16 (no register cut short)
    eval_batch_size: int = 16
    rsft_k: int = 4
    # matched: RSFT samples train-split problems drawn at the evaluation's difficulty (KG: its hop range, new
    # paths); train: RSFT samples the SFT train problems (easy, when the eval split is harder)
    rsft_pool: str = "matched"
    executor: str = "local"
    # extra training conditions beside the clean registers, token-matched like them
    corruption: list[str] = field(default_factory=list)    # curate/corrupt.py KINDS, applied to each register
    corruption_registers: list[str] | None = None           # only these registers (default: all)
    mix: list[dict] = field(default_factory=list)           # [{titanium: 0.2, normal: 0.8}, ...]
    curriculum: str = "none"            # none | easy_first: train on easy problems first (hops or steps)
    nll_sample: int = 32                # traces per register for each student's NLL before training (0: off)
    # one precision for every cell (train, NLL, eval), resolved once when the grid starts: auto is bfloat16 where
    # the machine computes it natively, else float32 (tracestyle/precision.py)
    precision: str = "auto"
    device: str = "auto"
    train_backend: str = "hf"           # hf | unsloth | mlx
    eval_backend: str = "auto"          # auto | hf | ct2 | vllm | mlx
    full: bool = False                  # full fine-tuning instead of LoRA
    # for `grid --dry-run` on a machine without the GPU: its memory and its sustained bf16 TFLOP/s
    gpu_memory_gb: float | None = None
    gpu_tflops: float | None = None

    @classmethod
    def load(cls, path: str | Path) -> GridSpec:
        p = Path(path)
        data = load_yaml(p)
        if data is None:
            # an empty file is a mistake, not a request for the full default grid (hours of CPU)
            raise InputError("empty grid spec: give at least task: and registers: (see examples/)", str(p), 1)
        if not isinstance(data, dict):
            raise InputError("expected a mapping", str(p), 1)
        if "domain" in data:   # the key's earlier name
            if "kg" in data:
                raise InputError("give 'kg' only ('domain' is its old name)", str(p), key_line(p, "domain"), "domain")
            data["kg"] = data.pop("domain")
        known = {f.name for f in fields(cls)}
        for k in data:
            if k not in known:
                raise InputError(f"unknown key (known: {', '.join(sorted(known))})", str(p), key_line(p, k), k)
        # paths in a spec are relative to the spec's folder, so a spec runs from anywhere
        for k in ("kg", "registers_dir", "pw_dir"):
            v = data.get(k)
            if isinstance(v, str) and (v.endswith(".json") or k != "kg") and not Path(v).is_absolute():
                data[k] = str((p.parent / v).resolve())
        spec = cls(**data)
        spec.validate(str(p))
        return spec

    def validate(self, where: str = "<spec>") -> None:
        def bad(key, msg):
            raise InputError(msg, where, key_line(Path(where), key) if Path(where).exists() else None, key)
        if self.task not in TASKS:
            bad("task", f"unknown task '{self.task}'")
        if not self.registers:
            bad("registers", "needs at least one register")
        try:
            load_registers(self.registers, self.registers_dir)
        except InputError as e:
            bad("registers_dir" if "dir" in str(e) else "registers", str(e))
        if not self.students:
            bad("students", "needs at least one student")
        for st in self.students:
            try:
                load_preset(st)
            except InputError as e:
                bad("students", str(e))
        if self.task in TASKS:
            get_task(self.task).check_spec(self, bad)
        if not self.seeds or not all(isinstance(x, int) and not isinstance(x, bool) for x in self.seeds):
            bad("seeds", f"must be a non-empty list of integers, got {self.seeds!r}")
        if self.eval_max_new_tokens != "auto" and (not isinstance(self.eval_max_new_tokens, int)
                                                   or self.eval_max_new_tokens < 1):
            bad("eval_max_new_tokens", f"must be auto or a positive integer, got {self.eval_max_new_tokens!r}")
        for k in ("train_n", "eval_n", "eval_batch_size"):
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

        kinds = [k for k in KINDS if k in get_task(self.task).corruptions] if self.task in TASKS else list(KINDS)
        if not isinstance(self.corruption, list) or any(k not in kinds for k in self.corruption):
            bad("corruption", f"must be a list of {', '.join(kinds)} (for task {self.task}), got {self.corruption!r}")
        if self.corruption_registers is not None and any(r not in self.registers for r in self.corruption_registers):
            bad("corruption_registers", f"must name registers of this grid ({', '.join(self.registers)})")
        if not isinstance(self.mix, list):
            bad("mix", "must be a list of mappings register: share")
        for m in self.mix:
            if not isinstance(m, dict) or len(m) < 2 or any(r not in self.registers for r in m) or \
                    any(not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0 for v in m.values()) or \
                    abs(sum(m.values()) - 1) > 1e-6:
                bad("mix", f"each mix maps two or more of this grid's registers to shares that sum to 1, got {m!r}")
        if self.mix and self.token_budget == "none":
            bad("mix", "a mix is defined by token shares: give token_budget (matched or a number)")
        if isinstance(self.teacher, dict):
            unknown = set(self.teacher) - TEACHER_KEYS
            if unknown:
                bad("teacher", f"unknown teacher key(s) {sorted(unknown)} (known: {', '.join(sorted(TEACHER_KEYS))})")
            if self.teacher.get("kind", "openai") not in ("openai", "template"):
                bad("teacher", f"kind must be openai or template, got {self.teacher.get('kind')!r}")
            if self.teacher.get("kind", "openai") == "openai" and not self.teacher.get("model"):
                bad("teacher", "an openai teacher needs model (and base_url, unless the default local server)")
        elif self.teacher != "template":
            bad("teacher", f"must be template or a mapping with kind: openai, got {self.teacher!r}")
        if self.rsft_pool not in ("matched", "train"):
            bad("rsft_pool", f"must be matched or train, got {self.rsft_pool!r}")
        if self.curriculum not in ("none", "easy_first"):
            bad("curriculum", f"must be none or easy_first, got {self.curriculum!r}")
        try:
            normalise(self.precision)
        except InputError as e:
            bad("precision", str(e))
        if self.train_backend not in ("hf", "unsloth", "mlx"):
            bad("train_backend", f"must be hf, unsloth or mlx, got {self.train_backend!r}")
        if self.eval_backend not in ("auto", "hf", "ct2", "vllm", "mlx"):
            bad("eval_backend", f"must be auto, hf, ct2, vllm or mlx, got {self.eval_backend!r}")
        if not isinstance(self.full, bool):
            bad("full", f"must be true or false, got {self.full!r}")
        for k in ("gpu_memory_gb", "gpu_tflops"):
            v = getattr(self, k)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0):
                bad(k, f"must be a positive number, got {v!r}")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            bad("device", f"must be auto, cpu, cuda or mps, got {self.device!r}")
        if not isinstance(self.nll_sample, int) or self.nll_sample < 0:
            bad("nll_sample", f"must be a non-negative integer, got {self.nll_sample!r}")

    def teacher_config(self):
        """(kind, OpenAIConfig or None) for generate()."""
        if not isinstance(self.teacher, dict) or self.teacher.get("kind", "openai") == "template":
            return "template", None
        t = {k: v for k, v in self.teacher.items() if k != "kind"}
        return "openai", OpenAIConfig(**{"seed": self.data_seed, **t})

    def teacher_name(self) -> str:
        kind, cfg = self.teacher_config()
        return "template" if cfg is None else f"{cfg.model} at {cfg.base_url} (temperature {cfg.temperature}, k {cfg.k})"

    def conditions(self) -> list[str]:
        """The training conditions: each register, each corruption of a register, each mix."""
        regs = self.corruption_registers or self.registers
        return self.registers + [f"{r}+{k}" for r in regs for k in self.corruption] + [mix_name(m) for m in self.mix]

    def task_options(self) -> dict:
        return {"kg": self.kg, "train_hops": tuple(self.train_hops), "eval_hops": tuple(self.eval_hops),
                "answer_sets": self.answer_sets, "distractors": self.distractors, "rg_dataset": self.rg_dataset,
                "rg_config": self.rg_config, "pw_dir": self.pw_dir, "pw_size": self.pw_size, "pw_depth": self.pw_depth}
