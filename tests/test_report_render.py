"""The HTML report renders standalone in headless Chromium (screenshot taken by scripts/report_screenshot.sh)."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tracestyle.jsonl import write_json, write_jsonl
from tracestyle.reports.report import write_report

ROOT = Path(__file__).resolve().parents[1]


def _fake_run(tmp_path: Path) -> Path:
    """A run folder with real problems and hand-written evaluation rows (no training needed)."""
    from tracestyle.distill.evaluate import score
    from tracestyle.tasks.kg.questions import generate_kg_problems

    spec = {"task": "kg", "students": ["smollm2-135m"], "registers": ["normal"], "seeds": [0],
            "train_hops": [1, 3], "eval_hops": [4, 5]}
    write_json(tmp_path / "spec.json", spec)
    tr, ev = generate_kg_problems("devops", "train", 5, 0), generate_kg_problems("devops", "eval", 6, 0)
    write_jsonl(tmp_path / "problems" / "train.jsonl", tr)
    write_jsonl(tmp_path / "problems" / "eval.jsonl", ev)
    for reg, good in (("base", 1), ("normal", 4)):
        rows = []
        for i, p in enumerate(ev):
            out = "\n".join(f"{h['from']} {h['phrase']} {h['to']}." for h in p["path"]) + f"\n#### {p['gold']}" \
                if i < good else "I am not sure."
            rows.append({"problem_id": p["id"], "gold": p["gold"], "output": out, "difficulty": p["difficulty"],
                         **score(p, out)})
        d = tmp_path / "cells" / "smollm2-135m" / reg / ("eval" if reg == "base" else "seed0/eval")
        write_jsonl(d / "eval.jsonl", rows)
        write_json(d / "manifest.json", {"stage": "eval"})
    return tmp_path


def test_report_content_and_screenshot(tmp_path):
    run = _fake_run(tmp_path / "run")
    html = write_report(run)
    text = html.read_text()
    assert "0.667" in (run / "report.md").read_text()  # 4 of 6 correct for the normal register
    assert "<script" not in text and "src='http" not in text
    if not (shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")):
        pytest.skip("chromium not installed (make setup-test installs it where apt is available)")
    png = tmp_path / "shot.png"
    r = subprocess.run([str(ROOT / "scripts" / "report_screenshot.sh"), str(html), str(png)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
