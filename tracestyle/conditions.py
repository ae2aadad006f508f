"""Training conditions of a grid: a clean register ("gold"), a corrupted register ("gold+shuffle_steps") or a mix
of registers by token share ("mix-normal80-titanium20"); one name per condition, used for files and reports."""

from __future__ import annotations


def mix_name(mix: dict) -> str:
    return "mix-" + "-".join(f"{r}{round(100 * v)}" for r, v in sorted(mix.items(), key=lambda kv: (-kv[1], kv[0])))


def parents(condition: str, spec: dict) -> list[str]:
    """The clean registers a condition is built from (itself for a clean register; "base" or the register an RL
    condition "<start>@<variant>" starts from)."""
    if "@" in condition:
        return [condition.split("@")[0]]
    if "+" in condition:
        return [condition.split("+")[0]]
    for m in spec.get("mix") or []:
        if mix_name(m) == condition:
            return list(m)
    return [condition]


def conditions_of(spec: dict) -> list[str]:
    """The conditions of a spec as written to spec.json (older runs: the registers)."""
    return spec.get("conditions") or spec["registers"]
