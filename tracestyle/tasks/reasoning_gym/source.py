"""reasoning-gym's procedural generators as a problem source: each problem keeps its generator entry (question,
answer, metadata), because the generator's own verifier needs the metadata to score an answer."""

from __future__ import annotations

import json
from functools import lru_cache

from tracestyle.errors import InputError, MissingExtraError
from tracestyle.tasks.reasoning_gym.solution import reference_solution

# train and eval draw from seeds this far apart, so the two splits are different streams of the generator
_SPLIT_OFFSET = {"train": 0, "eval": 1_000_003, "test": 1_000_003}


def rg():
    try:
        import reasoning_gym
    except ImportError:
        raise MissingExtraError("reasoning-gym", "rg") from None
    return reasoning_gym


def dataset_names() -> list[str]:
    rg()   # a missing package is a MissingExtraError naming the extra, not an ImportError
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


def _json_clean(entry: dict) -> dict:
    # metadata may hold tuples or other non-JSON values; the verifiers accept the JSON round trip (tested)
    return json.loads(json.dumps(entry, default=str))


def load_rg(dataset: str | None, split: str, n: int, seed: int, config: dict | None = None) -> list[dict]:
    lib = rg()
    if not dataset:
        raise InputError("reasoning-gym needs a dataset name, e.g. family_relationships", field="rg_dataset")
    if dataset not in dataset_names():
        raise InputError(f"unknown reasoning-gym dataset '{dataset}' (known: {', '.join(dataset_names()[:12])}, ...)",
                         field="rg_dataset")
    if split not in _SPLIT_OFFSET:
        raise InputError(f"unknown split '{split}' (train or eval)", field="split")
    try:
        ds = lib.create_dataset(dataset, seed=seed + _SPLIT_OFFSET[split], size=n, **(config or {}))
    except (TypeError, ValueError, AssertionError) as e:
        raise InputError(f"reasoning-gym rejected the config for '{dataset}': {e}", field="rg_config") from None
    out = []
    for i in range(n):
        entry = _json_clean(ds[i])
        sol = reference_solution(dataset, entry)
        out.append({"id": f"rg-{dataset}-{split}-{seed}-{i}", "task": "reasoning_gym", "split": split,
                    "question": entry["question"], "gold": str(entry["answer"]), "rg_dataset": dataset,
                    "rg_entry": entry, "steps": sol["steps"] if sol else [],
                    "difficulty": {"steps": len(sol["steps"]) if sol else None}})
    return out


@lru_cache(maxsize=64)
def score_fn(dataset: str):
    return rg().get_score_answer_fn(dataset)
