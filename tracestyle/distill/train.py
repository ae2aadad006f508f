"""The train stage: split hygiene, backend dispatch, manifest written last."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

from tracestyle.distill.config import TrainConfig
from tracestyle.distill.sft_hf import pick_device, train_hf
from tracestyle.distill.sft_mlx import train_mlx
from tracestyle.distill.sft_unsloth import train_unsloth
from tracestyle.errors import InputError
from tracestyle.jsonl import read_jsonl, strip_meta, write_json
from tracestyle.manifest import is_complete, write_manifest
from tracestyle.precision import resolve_precision

log = logging.getLogger("tracestyle")


def check_split(rows: list[dict], path: str, allow_eval_leak: bool) -> list[dict]:
    """Training never reads the evaluation split unless the user says so, loudly."""
    leaks = [r for r in rows if r.get("split") == "eval" or (r.get("problem") or {}).get("split") == "eval"]
    if leaks and not allow_eval_leak:
        raise InputError(f"{len(leaks)} rows come from the eval split; training on them would leak the evaluation "
                         "(pass --allow-eval-leak to do it anyway; the manifest and reports will say so)",
                         path, leaks[0].get("__line__"), "split")
    if leaks:
        log.warning("EVAL LEAK: training on %d eval-split rows (--allow-eval-leak)", len(leaks))
    return leaks


def run_train(data: str | Path, cfg: TrainConfig, out_dir: str | Path, *, allow_eval_leak: bool = False,
              init_adapter: str | None = None, progress=None, eval_data: str | Path | None = None) -> dict:
    t0 = time.time()
    # the precision that will run, in the manifest: a rerun in another precision retrains
    cfg = replace(cfg, dtype=resolve_precision(cfg.dtype, "cpu" if cfg.backend == "mlx" else pick_device(cfg.device)))
    inputs = [data] + ([eval_data] if eval_data else [])
    conf = {**cfg.to_dict(), "init_adapter": init_adapter, "allow_eval_leak": allow_eval_leak}
    if is_complete(out_dir, conf, inputs):
        return {"skipped": True}
    rows = read_jsonl(data, required=("question", "text"))
    for r in rows:
        if not isinstance(r["text"], str) or not isinstance(r["question"], str):
            raise InputError("expected a string", str(data), r["__line__"], "text")
    leaks = check_split(rows, str(data), allow_eval_leak)
    held = [strip_meta(r) for r in read_jsonl(eval_data, required=("question", "text"))] if eval_data else None
    rows = [strip_meta(r) for r in rows]
    if cfg.backend == "hf":
        res = train_hf(rows, cfg, out_dir, init_adapter=init_adapter, progress=progress, heldout_rows=held)
    elif cfg.backend == "unsloth":
        res = train_unsloth(rows, cfg, out_dir)
    else:
        res = train_mlx(rows, cfg, out_dir)
    res["eval_leak"] = bool(leaks)
    write_json(Path(out_dir) / "train_config.json", cfg.to_dict())   # every backend: eval reads its prompt format
    write_manifest(out_dir, "train", conf, inputs, {"rows": len(rows), **res}, started=t0,
                   extra={"eval_leak": bool(leaks)})
    return {"skipped": False, **res}
