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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 900):
    """Run the real `tracestyle` entry point in a subprocess, as a user would."""
    e = {**os.environ, "TRACESTYLE_QUIET": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "tracestyle.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=timeout)


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
