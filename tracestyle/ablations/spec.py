"""Grid specs: task x registers x students x seeds (x token budget), loaded from YAML with errors that name the
file, line and key."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from tracestyle.ablations.refine_config import RefineConfig
from tracestyle.conditions import mix_name
from tracestyle.curate.corrupt import KINDS
from tracestyle.curate.teachers.openai_client import OpenAIConfig
from tracestyle.distill.config import EVAL_BATCH
from tracestyle.distill.models import load_preset
from tracestyle.errors import InputError
from tracestyle.precision import normalise
from tracestyle.prompts import load_registers
from tracestyle.tasks import TASKS, get_task
from tracestyle.yamlfile import key_line, load_yaml

RECIPES = ("sft", "sft+rsft", "sft+grpo", "grpo")
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
    recipe: str = "sft"                 # sft | sft+rsft | sft+grpo | grpo (GRPO from the base model)
    # GRPO: the reward ("answer,kg_path:0.5"), or several variants, each a condition of its own:
    # [{name: grpo-path, reward: "answer,kg_path:0.5", from: sft}]  (from: sft = each register's SFT adapter, base)
    # {name: rsft, method: rsft}: rejection sampling from the same start (rsft_k, rsft_pool), so SFT, RSFT and GRPO
    # are cells of one grid on the same problems; k and pool_n set its samples per problem and pool size (k: 8,
    # pool_n: 30 draws the 240 completions of a 30-step GRPO variant with 8 generations)
    reward: str = "answer"
    rl: list[dict] = field(default_factory=list)
    rl_steps: int = 20
    rl_generations: int = 8
    rl_prompts_per_step: int = 1
    rl_max_new_tokens: int = 128
    rl_lr: float = 5e-5
    rl_beta: float = 0.0
    rl_temperature: float = 1.0
    rl_solvable_k: int = 0
    rl_rollouts: str = "auto"           # transformers | vllm (through TRL, colocated on a GPU) | auto
    # evaluation sets the students never trained on, each against the base model:
    # [{name: world, task: kg, kg: world}, {name: family, task: reasoning_gym, rg_dataset: family_relationships}]
    transfer: list[dict] = field(default_factory=list)
    transfer_n: int = 50
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
    eval_batch_size: int = EVAL_BATCH
    rsft_k: int = 4
    # matched: RSFT samples train-split problems drawn at the evaluation's difficulty (KG: its hop range, new
    # paths); train: RSFT samples the SFT train problems (easy, when the eval split is harder)
    rsft_pool: str = "matched"
    executor: str = "local"
    # jobs at once on this machine (local executor): auto measures one job on every core against one single-thread
    # job per core, once per machine (ablations/workers.py); 1 on a GPU
    workers: int | str = "auto"
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
    # the curation filters every teacher pass goes through (default: ablations/grid.py FILTERS); drop `correct` to
    # train on traces whatever their answer (e.g. to ask what wrong-answer traces teach)
    filters: list[str] | None = None
    # refine a register round by round from the student's failures (tracestyle refine; ablations/refine.py):
    # {rounds, start, per_round, max_nll_increase, stop, significant, alpha, min_kept_share, only}
    refine: dict | None = None

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
        if self.recipe not in RECIPES:
            bad("recipe", f"unknown recipe '{self.recipe}' ({', '.join(RECIPES)})")
        self._validate_rl(bad)
        if self.executor not in ("local", "ray"):
            bad("executor", f"unknown executor '{self.executor}' (local, ray)")
        w = self.workers
        if not (w == "auto" or (isinstance(w, int) and not isinstance(w, bool) and w >= 1)):
            bad("workers", f"must be auto or a positive integer, got {w!r}")
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
        if self.filters is not None:
            from tracestyle.curate.filters import FILTERS as KNOWN

            # the judge and decontam filters need what only `tracestyle curate` configures
            usable = [f for f in KNOWN.names() if f not in ("judge", "decontam")]
            if not isinstance(self.filters, list) or not self.filters or any(f not in usable for f in self.filters):
                bad("filters", f"must be a non-empty list of {', '.join(usable)}, got {self.filters!r}")
        if self.refine is not None:
            self._validate_refine(bad)

    def _validate_refine(self, bad) -> None:
        rc = RefineConfig.parse(self.refine, bad)
        if rc.start is not None:
            try:
                load_registers([rc.start], self.registers_dir)
            except InputError as e:
                bad("refine", str(e))
        for k, why in (("corruption", "corrupted conditions"), ("mix", "mixes"), ("rl", "GRPO variants"),
                       ("transfer", "transfer sets")):
            if getattr(self, k):
                bad(k, f"a refine run trains one register version per round: leave out {why}")
        if self.recipe != "sft":
            bad("recipe", "a refine run trains each round with SFT (recipe: sft)")

    def _validate_rl(self, bad) -> None:
        from tracestyle.rl.rewards import parse_rewards

        if not isinstance(self.rl, list) or any(not isinstance(v, dict) for v in self.rl):
            bad("rl", "must be a list of mappings {name, reward, from, method}")
        names = set()
        for v in self.rl_variants():
            if v["method"] not in ("grpo", "rsft"):
                bad("rl", f"method must be grpo or rsft, got {v['method']!r}")
            known = {"name", "from", "method"} | ({"reward"} if v["method"] == "grpo" else {"k", "pool_n"})
            unknown = set(v) - known
            if unknown:
                bad("rl", f"unknown key(s) {sorted(unknown)} in {v!r} (a {v['method']} variant knows "
                          f"{', '.join(sorted(known))}; an rsft variant keeps correct samples and takes no reward)")
            for k in ("k", "pool_n"):
                if k in v and (not isinstance(v[k], int) or isinstance(v[k], bool) or v[k] < 1):
                    bad("rl", f"{k} must be a positive integer, got {v[k]!r} in {v!r}")
            if not isinstance(v.get("name"), str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v["name"]):
                bad("rl", f"each variant needs a name of letters, digits, '-', '_' or '.', got {v.get('name')!r}")
            if v["name"] in names:
                bad("rl", f"two variants are named {v['name']!r}")
            names.add(v["name"])
            if v.get("from", "sft") not in ("sft", "base"):
                bad("rl", f"from must be sft or base, got {v.get('from')!r}")
            try:
                if v["method"] == "grpo":
                    parse_rewards(v.get("reward", self.reward))
            except InputError as e:
                bad("rl" if self.rl else "reward", str(e))
        if self.rl and self.recipe == "sft+rsft":
            bad("rl", "with recipe sft+rsft a register's cell is its RSFT adapter and its SFT adapter goes "
                      "unevaluated: use recipe sft with a variant {name: rsft, method: rsft} beside the GRPO ones "
                      "to evaluate SFT, RSFT and GRPO side by side")
        for k in ("rl_steps", "rl_generations", "rl_prompts_per_step", "rl_max_new_tokens", "transfer_n"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(k, f"must be a positive integer, got {v!r}")
        if self.rl_rollouts not in ("auto", "transformers", "vllm"):
            bad("rl_rollouts", f"must be auto, transformers or vllm, got {self.rl_rollouts!r}")
        if self.rl_generations < 2:
            bad("rl_generations", "GRPO compares completions within a group: at least 2")
        if not isinstance(self.rl_solvable_k, int) or self.rl_solvable_k < 0 or self.rl_solvable_k == 1:
            bad("rl_solvable_k", f"must be 0 (off) or at least 2, got {self.rl_solvable_k!r}")
        if not isinstance(self.transfer, list):
            bad("transfer", "must be a list of mappings {name, task, ...task options}")
        tnames = set()
        for t in self.transfer:
            if not isinstance(t, dict) or not isinstance(t.get("name"), str) or t.get("task") not in TASKS:
                bad("transfer", f"each set needs a name and a known task ({', '.join(TASKS.names())}), got {t!r}")
            if t["name"] in tnames:
                bad("transfer", f"two sets are named {t['name']!r}")
            tnames.add(t["name"])
            unknown = set(t) - {"name", "task", "kg", "eval_hops", "rg_dataset", "rg_config", "pw_dir", "pw_size",
                                "pw_depth", "answer_sets", "distractors", "data"}
            if unknown:
                bad("transfer", f"unknown key(s) {sorted(unknown)} in {t!r}")

    def rl_variants(self) -> list[dict]:
        """The variants trained after (or instead of) SFT, each {name, method: grpo | rsft, from, reward (grpo)}:
        the spec's `rl` list, or the one its recipe implies (sft+grpo, grpo)."""
        if self.rl:
            out = []
            for v in self.rl:
                method = v.get("method", "grpo")
                out.append({"from": "sft", "method": method, **({"reward": self.reward} if method == "grpo" else {}),
                            **v})
            return out
        if self.recipe == "sft+grpo":
            return [{"name": "grpo", "method": "grpo", "reward": self.reward, "from": "sft"}]
        if self.recipe == "grpo":
            return [{"name": "grpo", "method": "grpo", "reward": self.reward, "from": "base"}]
        return []

    def grpo_variants(self) -> list[dict]:
        return [v for v in self.rl_variants() if v["method"] == "grpo"]

    def rl_conditions(self) -> list[str]:
        """One condition per variant and starting point: "<register>@<variant>" (from that register's SFT
        adapter) or "base@<variant>"."""
        out = []
        for v in self.rl_variants():
            out += [f"base@{v['name']}"] if v["from"] == "base" else [f"{r}@{v['name']}" for r in self.registers]
        return out

    def sft_trained(self) -> bool:
        """Whether the grid fine-tunes on the registers' traces (recipe grpo alone does not)."""
        return self.recipe != "grpo"

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
