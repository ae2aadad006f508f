"""Shared fixtures: real GSM8K data, the bundled model, and a real llama.cpp OpenAI-compatible server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TRACESTYLE_QUIET", "1")
# `auto` precision means float32 in the suite, on every CPU: its assertions (engines token-identical, a trained
# student beating the base model) must not depend on whether CI's CPU has native bf16. bf16 is tested by name
# (tests/test_precision.py), and precision resolution with fake CPU flags.
os.environ.setdefault("TRACESTYLE_PRECISION", "float32")
# likewise grid jobs run one at a time unless a test asks for more: a job's thread count changes float rounding
# (tests/test_workers.py runs them side by side, and the measured choice)
os.environ.setdefault("TRACESTYLE_WORKERS", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 900):
    """Run the real `tracestyle` entry point as a user would, in this process: the same parser, exit codes and
    output streams, without importing torch and transformers again for every call (about 110 calls in the suite).
    A test that must kill the command (kill -9 mid-write) starts its own process with `cli_process`."""
    import contextlib
    import io
    import traceback

    from tracestyle.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update({"TRACESTYLE_QUIET": "1", **(env or {})})
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(list(args))
            except SystemExit as e:        # argparse's usage errors
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except Exception:              # what a user would see as a traceback and exit status 1
                traceback.print_exc()
                rc = 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["tracestyle", *args], rc, out.getvalue(), err.getvalue())


def cli_process(*args: str, **popen) -> subprocess.Popen:
    """The `tracestyle` command in its own process, for tests that kill it."""
    env = {**os.environ, "TRACESTYLE_QUIET": "1"}
    return subprocess.Popen([sys.executable, "-m", "tracestyle.cli", "--quiet", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)


@pytest.fixture(scope="session")
def gsm8k_dir() -> Path:
    from tracestyle.tasks.gsm8k.source import default_dir

    return default_dir()


def start_llama_server(port: int, log=subprocess.DEVNULL, timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """llama-cpp-python's server over the bundled SmolLM2-135M GGUF, once it answers (tests and benchmarks)."""
    from tracestyle.distill.models import bundled_gguf

    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf()),
                             "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                             "--n_ctx", "2048"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama server exited with {proc.returncode}; see {getattr(log, 'name', 'its log')}")
        try:
            if httpx.get(base + "/models", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"llama server did not start in {timeout:.0f} s")


@pytest.fixture(scope="session")
def llama_server():
    """llama-cpp-python's server over the bundled SmolLM2-135M GGUF on 127.0.0.1 (not a mock)."""
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] not installed (make setup-test)")

    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{port}.log", "w")
    proc, base = start_llama_server(port, log)
    yield {"base_url": base, "port": port, "proc": proc}
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip is a failure: every real component a test needs (llama.cpp server, Chromium,
    SWI-Prolog, mlx, vLLM, PhantomWiki) is installed by `make test`, so a skip there means the set-up broke and
    the test's coverage silently went away."""
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and _in_ci() and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"skipped under CI=true (make test installs what this test needs): {reason}"
