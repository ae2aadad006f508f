"""The HTML report: rendered from its Jinja template, self-contained, with a headline per student size, Holm-
corrected comparisons, the scale x style plot, the failure heatmap and examples; checked in headless Chromium
(a screenshot, and the rendered DOM holds every table and plot)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tracestyle.jsonl import write_json, write_jsonl
from tracestyle.reports.report import write_report
from tracestyle.tasks import score
from tracestyle.tasks.kg.questions import generate_kg_problems

ROOT = Path(__file__).resolve().parents[1]
STUDENTS = ["smollm2-135m", "gemma3-270m"]


def _fake_run(tmp_path: Path, students=("smollm2-135m",), good=None, n_eval: int = 6) -> Path:
    """A run folder with real problems and hand-written evaluation rows (no training needed)."""
    good = good or {"base": 1, "normal": 4}
    regs = [r for r in good if r != "base"]
    spec = {"task": "kg", "students": list(students), "registers": regs, "seeds": [0], "train_hops": [1, 3],
            "eval_hops": [4, 5], "teacher": "template", "token_budget": "matched"}
    write_json(tmp_path / "spec.json", spec)
    tr, ev = generate_kg_problems("devops", "train", 5, 0), generate_kg_problems("devops", "eval", n_eval, 0)
    write_jsonl(tmp_path / "problems" / "train.jsonl", tr)
    write_jsonl(tmp_path / "problems" / "eval.jsonl", ev)
    for student in students:
        for reg, k in good.items():
            rows = []
            for i, p in enumerate(ev):
                out = "\n".join(f"{h['from']} {h['phrase']} {h['to']}." for h in p["path"]) + f"\n#### {p['gold']}" \
                    if i < k else ("I am not sure." if i % 2 else f"{p['start']} causes Flux Fault.\n#### {p['start']}")
                rows.append({"problem_id": p["id"], "gold": p["gold"], "output": out, "difficulty": p["difficulty"],
                             **score(p, out)})
            d = tmp_path / "cells" / student / reg / ("eval" if reg == "base" else "seed0/eval")
            write_jsonl(d / "eval.jsonl", rows)
            write_json(d / "manifest.json", {"stage": "eval"})
            write_json(d / "summary.json", {"backend": "ct2", "gen_tokens": 40 * len(rows), "gen_seconds": 2.5,
                                            "tokens_per_s": round(40 * len(rows) / 2.5, 2), "loops_stopped": 1})
    return tmp_path


def test_report_content_and_screenshot(tmp_path):
    run = _fake_run(tmp_path / "run")
    html = write_report(run)
    text = html.read_text()
    md = (run / "report.md").read_text()
    assert "0.667" in md  # 4 of 6 correct for the normal register
    # what each evaluation cost, from its own summary: 6 rows x 40 tokens in 2.5 s
    assert "| smollm2-135m | normal | 0 | ct2 (float32) | 240 | 40 | 96.0 | 2.5 | 0 | 1 |" in md
    assert "<script" not in text and "src='http" not in text and 'src="http' not in text
    if not (shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")):
        pytest.skip("chromium not installed (make setup-test installs it where apt is available)")
    png = tmp_path / "shot.png"
    r = subprocess.run([str(ROOT / "scripts" / "report_screenshot.sh"), str(html), str(png)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_scale_by_style_report_headline_and_dom(tmp_path):
    good = {"base": 20, "normal": 60, "gold": 150, "titanium": 62}
    run = _fake_run(tmp_path / "run", STUDENTS, good, n_eval=200)
    html = write_report(run)
    md = (run / "report.md").read_text()
    # a headline per student size, in plain words, with effect sizes and Holm-corrected p-values
    for s in STUDENTS:
        assert f"### {s} (" in md
    assert "gold beats the base model: +65.0 points" in md and "Holm p" in md
    assert "normal vs titanium" in md and "detectable" in md
    assert "differ in model family as well as size" in md
    text = html.read_text()
    comps = re.search(r'<table id="table-comparisons">(.*?)</table>', text, re.S).group(1)
    assert comps.count("<tr>") == 1 + 2 * (3 + 3)   # header + per student: 3 vs base, 3 pairs
    if not shutil.which("chromium"):
        pytest.skip("chromium not installed")
    profile = tmp_path / "profile"
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                          "--no-first-run", "--disable-background-networking", "--disable-component-update",
                          "--disable-sync", f"--user-data-dir={profile}", "--dump-dom", f"file://{html}"],
                         capture_output=True, text=True, timeout=120).stdout
    for tid in ("accuracy", "comparisons", "failures", "difficulty", "validity-path", "eval_cost"):
        assert f'id="table-{tid}"' in dom, tid
    for pid in ("plot-scale", "plot-cells", "plot-failures"):
        m = re.search(rf'<img id="{pid}"[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', dom)
        assert m and len(m.group(1)) > 2000, pid
    assert dom.count('class="headline"') == 2 and 'class="example-category"' in dom
    png = tmp_path / "scale.png"
    r = subprocess.run([str(ROOT / "scripts" / "report_screenshot.sh"), str(html), str(png)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and png.stat().st_size > 20_000


def test_gsm8k_report_counts_right_answers_reached_by_wrong_steps(tmp_path, gsm8k_dir):
    """GSM8K gets the trace-valid x answer-correct table: steps checked in every evaluation row."""
    import csv

    from tracestyle.tasks.gsm8k.source import load_gsm8k

    run = tmp_path / "run"
    ev = load_gsm8k("test", gsm8k_dir, 8)
    write_json(run / "spec.json", {"task": "gsm8k", "students": ["smollm2-135m"], "registers": ["normal"],
                                   "seeds": [0], "teacher": "template", "token_budget": "matched"})
    write_jsonl(run / "problems" / "train.jsonl", load_gsm8k("train", gsm8k_dir, 2))
    write_jsonl(run / "problems" / "eval.jsonl", ev)
    outs = ["She has 2 + 2 = 5 apples.\n#### {g}", "She has 2 + 2 = 4 apples.\n#### {g}",
            "She has 2 + 2 = 4 apples.\n#### 0.5", "Nothing to compute.\n#### {g}"]
    for reg in ("base", "normal"):
        rows = []
        for i, p in enumerate(ev):
            out = outs[i % 4].format(g=p["gold"])
            rows.append({"problem_id": p["id"], "gold": p["gold"], "output": out, "difficulty": p["difficulty"],
                         **score(p, out)})
        d = run / "cells" / "smollm2-135m" / reg / ("eval" if reg == "base" else "seed0/eval")
        write_jsonl(d / "eval.jsonl", rows)
        write_json(d / "manifest.json", {"stage": "eval"})
    write_report(run)
    md = (run / "report.md").read_text()
    assert "Trace validity (arithmetic steps)" in md and "wrong steps & right answer" in md
    row = next(r for r in csv.DictReader(open(run / "results.csv")) if r["register"] == "normal")
    # 8 rows: 2 right answers after a wrong step, 2 wrong answers after valid steps, 2 with nothing to check
    assert (row["right_answer_wrong_steps"], row["wrong_answer_valid_steps"], row["steps_valid_rate"]) == \
        ("2", "2", "0.6667")


def test_headline_states_a_winner_s_lead_as_positive():
    """'normal beats gold' reads +22.5 points even though the pair's difference (gold − normal) is negative."""
    from tracestyle.reports.analysis import headlines

    c = {"student": "smollm2-135m", "a": "normal", "b": "gold", "diff": -0.225, "ci_low": -0.30, "ci_high": -0.15,
         "cohen_h": -0.52, "p_holm": 6.3e-7, "n": 200, "mde": 0.13}
    same = {**c, "b": "titanium", "diff": -0.085, "ci_low": -0.165, "ci_high": -0.005, "cohen_h": -0.18,
            "p_holm": 0.21}
    lines = headlines({"spec": {"students": ["smollm2-135m"]}}, [c, same])[0]["lines"]
    assert "normal beats gold: +22.5 points [+15.0, +30.0], h = +0.52, Holm p = 6.3e-07." in lines
    assert any(ln.startswith("normal vs titanium: no detectable difference (titanium − normal: -8.5 points "
                             "[-16.5, -0.5]") for ln in lines)
