"""A student's view of a register before any training: mean negative log-likelihood per completion token of the
register's traces (a fixed sample, prompt tokens excluded). One forward pass each: cheap beside training, and a
candidate predictor of which register a student learns from (small students learn better from traces close to
their own distribution)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from random import Random

from tracestyle.distill.config import config_from_preset
from tracestyle.distill.examples import collate
from tracestyle.distill.models import load_model, load_tokenizer
from tracestyle.distill.sft_hf import completion_loss, pick_device, prepare_examples
from tracestyle.jsonl import read_jsonl, write_json
from tracestyle.manifest import is_complete, write_manifest
from tracestyle.precision import resolve_precision


def sample_rows(rows: list[dict], n: int, seed: int = 0) -> list[dict]:
    """The same problems for every register where they have them: a fixed order by problem id, then the first n."""
    ids = sorted({str(r.get("problem_id")) for r in rows})
    Random(seed).shuffle(ids)
    rank = {pid: i for i, pid in enumerate(ids)}
    return sorted(rows, key=lambda r: (rank[str(r.get("problem_id"))], r.get("text", "")))[:n]


def student_nll(student: str, rows: list[dict], *, progress=None, precision: str = "auto") -> dict:
    import torch  # here, not at import: the CLI starts without torch

    cfg = config_from_preset(student)
    device = pick_device(cfg.device)
    tok = load_tokenizer(student)
    examples = prepare_examples(rows, tok, cfg)
    model = load_model(student, resolve_precision(precision, device), device)
    model.eval()
    per_row = []
    with torch.no_grad():
        # one row at a time: no padding to reason about, and the mean over rows comes beside the mean over tokens
        for i, e in enumerate(examples):
            ids, labels, mask = (t.to(device) for t in collate([e], tok.pad_token_id or 0))
            loss, k = completion_loss(model, ids, labels, mask)
            per_row.append((float(loss), k))
            if progress:
                progress(i + 1, len(examples))
    tot, n = sum(x for x, _ in per_row), sum(k for _, k in per_row)
    nll = tot / max(1, n)
    return {"nll": round(nll, 4), "perplexity": round(math.exp(min(nll, 50)), 3), "tokens": n,
            "rows": len(per_row), "row_mean_nll": round(sum(x / max(1, k) for x, k in per_row) / max(1, len(per_row)), 4)}


def run_nll(student: str, data: str | Path, out_dir: str | Path, *, sample: int = 32, progress=None,
            precision: str = "auto") -> dict:
    t0 = time.time()
    out = Path(out_dir)
    precision = resolve_precision(precision, pick_device("auto"))
    conf = {"student": student, "sample": sample, "precision": precision}
    if is_complete(out, conf, [data]):
        return {"skipped": True}
    rows = sample_rows(read_jsonl(data, allow_empty=True), sample)
    res = student_nll(student, rows, progress=progress, precision=precision) if rows else {"nll": None, "tokens": 0, "rows": 0}
    write_json(out / "nll.json", {"student": student, "data": str(data), "precision": precision, **res})
    write_manifest(out, "nll", conf, [data], res, started=t0)
    return {"skipped": False, **res}
