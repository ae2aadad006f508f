"""kill -9 inside curate's writes and during eval: reruns complete, JSONL never holds partial lines or
duplicates, and a manifest exists only for a complete stage."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


def _spawn(*args):
    return subprocess.Popen([sys.executable, "-m", "tracestyle.cli", "--quiet", *args],
                            env={**os.environ, "TRACESTYLE_QUIET": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _check_jsonl(path):
    if not path.exists():
        return []
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"partial last line in {path}"
    return [json.loads(x) for x in data.splitlines() if x.strip()]


# Runs curate in a child that kills itself (SIGKILL, nothing flushed or cleaned up) at one exact point of its
# writes: half-way through writing a file's temporary copy, or right after a file is renamed into place.
KILL_AT = r"""
import os, signal, sys
from pathlib import Path
target, point = sys.argv[1], sys.argv[2]
real_fdopen, real_replace = os.fdopen, os.replace

def die():
    os.kill(os.getpid(), signal.SIGKILL)

class HalfWriter:
    def __init__(self, f): self.f = f
    def __enter__(self): return self
    def __exit__(self, *exc): self.f.close()
    def write(self, text):
        self.f.write(text[: len(text) // 2]); self.f.flush(); os.fsync(self.f.fileno()); die()

def fdopen(fd, *a, **k):
    f = real_fdopen(fd, *a, **k)
    if point == "mid-write" and Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith(f".{target}."):
        return HalfWriter(f)
    return f

def replace(src, dst):
    real_replace(src, dst)
    if point == "after-rename" and Path(dst).name == target:
        die()

os.fdopen, os.replace = fdopen, replace
from tracestyle.cli import main
sys.exit(main(["--quiet", *sys.argv[3:]]))
"""


def _curate_killed_at(target: str, point: str, args) -> int:
    return subprocess.run([sys.executable, "-c", KILL_AT, target, point, *args], env={**os.environ,
                          "TRACESTYLE_QUIET": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode


@pytest.mark.parametrize("target,point", [("kept.jsonl", "mid-write"), ("kept.jsonl", "after-rename"),
                                          ("dropped.jsonl", "mid-write"), ("manifest.json", "mid-write")])
def test_curate_killed_inside_its_writes(tmp_path, target, point):
    """A complete curate of an older trace file is in the folder; curate of a newer one is killed inside one of
    its writes. Readers then see whole files only (old or new, never a torn line), no manifest vouches for
    outputs it did not write, and the rerun completes with every row once."""
    probs = tmp_path / "p.jsonl"
    assert run_cli("problems", "--task", "kg", "--split", "train", "--n", "40", "--out", str(probs)).returncode == 0
    assert run_cli("generate", "--problems", str(probs), "--registers", "normal,titanium",
                   "--out", str(tmp_path / "g")).returncode == 0
    traces = (tmp_path / "g" / "traces.jsonl").read_text().splitlines(True)
    old_in, new_in = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old_in.write_text("".join(traces[:30]))
    new_in.write_text("".join(traces))
    out = tmp_path / "c"
    assert run_cli("curate", "--in", str(old_in), "--task", "kg", "--out", str(out)).returncode == 0
    old_kept, old_dropped = (out / "kept.jsonl").read_bytes(), (out / "dropped.jsonl").read_bytes()

    args = ("curate", "--in", str(new_in), "--task", "kg", "--out", str(out))
    assert _curate_killed_at(target, point, args) == -signal.SIGKILL, "the kill did not land inside the write"
    seen = {name: (out / name).read_bytes() for name in ("kept.jsonl", "dropped.jsonl")}
    for name in seen:
        _check_jsonl(out / name)    # whole lines only
    assert not (out / "manifest.json").exists(), "a manifest left beside outputs this run was rewriting"
    assert run_cli(*args).returncode == 0
    kept, dropped = _check_jsonl(out / "kept.jsonl"), _check_jsonl(out / "dropped.jsonl")
    keys = [(r["problem_id"], r["register"]) for r in kept + dropped]
    assert len(keys) == len(traces) == len(set(keys))
    man = json.loads((out / "manifest.json").read_text())
    assert man["counts"]["kept"] == len(kept) and man["counts"]["rows"] == len(traces)
    # each file the kill left was the old run's or this run's, whole
    assert seen["kept.jsonl"] in (old_kept, (out / "kept.jsonl").read_bytes())
    assert seen["dropped.jsonl"] in (old_dropped, (out / "dropped.jsonl").read_bytes())


def test_eval_killed_mid_run_resumes_without_duplicates(tmp_path):
    probs = tmp_path / "p.jsonl"
    assert run_cli("problems", "--task", "kg", "--split", "eval", "--n", "8", "--closed-book",
                   "--out", str(probs)).returncode == 0
    out = tmp_path / "e"
    args = ("eval", "--problems", str(probs), "--out", str(out), "--batch-size", "2", "--max-new-tokens", "12")
    p = _spawn(*args)
    deadline = time.time() + 300
    while time.time() < deadline and len(_check_jsonl(out / "eval.partial.jsonl")) < 2:
        time.sleep(0.1)
    p.send_signal(signal.SIGKILL)
    p.wait()
    before = _check_jsonl(out / "eval.partial.jsonl")
    assert 2 <= len(before) < 8 and not (out / "manifest.json").exists()
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    rows = _check_jsonl(out / "eval.jsonl")
    assert len(rows) == 8 == len({x["problem_id"] for x in rows})
    kept = {x["problem_id"]: x["output"] for x in before}
    assert all(x["output"] == kept[x["problem_id"]] for x in rows if x["problem_id"] in kept), "finished work reused"
