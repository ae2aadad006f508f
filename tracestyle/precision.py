"""The number format training and evaluation compute in, and the machine facts every measurement is named with.

Why `auto` reads CPU flags: machines of one kind differ. A CPU with AMX or AVX512_BF16 multiplies bfloat16
matrices ~7x faster than float32 (measured: 939 vs 136 GFLOP/s, 2 threads), one with AVX2 only emulates bfloat16
and runs it many times slower than float32. Neither can be told from the vendor name, so the flags decide.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache

from tracestyle.errors import InputError

PRECISIONS = ("auto", "bfloat16", "float32")
ALIASES = {"bf16": "bfloat16", "fp32": "float32", "float": "float32"}
# x86: AMX tiles or AVX-512 BF16 instructions; Arm (Linux): the BF16 extension
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")


def parse_cpuinfo(text: str) -> tuple[str, set[str]]:
    """(model name, flags) from /proc/cpuinfo: x86 says 'model name' and 'flags', Arm 'CPU part'/'Features'."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, flags


def facts_from(model: str, flags: set[str], cores: int) -> dict:
    wanted = sorted(f for f in flags if f in NATIVE_BF16_FLAGS or f in ("amx_tile", "avx512f", "avx2"))
    return {"cpu": model or platform.processor() or platform.machine(), "flags": wanted,
            "native_bf16": any(f in flags for f in NATIVE_BF16_FLAGS), "cores": cores}


@lru_cache(maxsize=1)
def cpu_facts() -> dict:
    """The CPU's model name, its bf16-related flags and its cores (what a measured figure depends on)."""
    try:
        with open("/proc/cpuinfo") as f:
            model, flags = parse_cpuinfo(f.read())
    except OSError:   # not Linux: no flags to read; `auto` then stays in float32 on the CPU
        model, flags = "", set()
    return facts_from(model, flags, os.cpu_count() or 1)


THREADS_ENV = "TRACESTYLE_THREADS"


def thread_budget() -> int:
    """The cores this process may use: every core, or its share when grid jobs run side by side (each worker
    process is given cores // workers in TRACESTYLE_THREADS). Stages that set torch's threads stay within it."""
    return max(1, int(os.environ.get(THREADS_ENV) or os.cpu_count() or 1))


def describe_cpu() -> str:
    """One line for logs, reports and benchmarks: 'Intel(R) Xeon(R) Processor (amx_bf16 avx512_bf16 ...; native bf16)'."""
    f = cpu_facts()
    return f"{f['cpu']} ({' '.join(f['flags']) or 'no bf16/AVX flags read'}; " \
           f"{'native bf16' if f['native_bf16'] else 'no native bf16'}; {f['cores']} cores)"


def normalise(precision: str | None, field: str = "precision") -> str:
    p = ALIASES.get(str(precision or "auto").lower(), str(precision or "auto").lower())
    if p not in PRECISIONS:
        raise InputError(f"unknown precision '{precision}' (auto, bfloat16, float32)", field=field)
    return p


def native_bf16(device: str) -> bool:
    if device == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device == "cpu":
        return cpu_facts()["native_bf16"]
    return False    # mps and others: float32 until measured there


def resolve_precision(precision: str | None, device: str) -> str:
    """`auto`: bfloat16 where `device` computes it natively, float32 elsewhere. TRACESTYLE_PRECISION pins what
    `auto` means on a machine (a user who needs float32's exact reproduction everywhere, or the test suite)."""
    p = normalise(precision)
    if p == "auto":
        p = normalise(os.environ.get("TRACESTYLE_PRECISION") or "auto", "TRACESTYLE_PRECISION")
    if p != "auto":
        return p
    return "bfloat16" if native_bf16(device) else "float32"
