"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the real server: each request gets the next fault in
a fixed rotation (or passes through), so every fault kind is exercised deterministically."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

FAULTS = ["429", "500", "503", "slow", "drop", "truncated", "malformed", "empty_choices"]
# not faults: the real reply reshaped as a reasoning server returns it (vLLM --reasoning-parser, DeepSeek's API):
# the model's text as `reasoning_content`, and `content` the answer after it, or null when the thinking ran out
RESHAPES = ["reasoning", "reasoning_only"]


class FaultProxy:
    def __init__(self, upstream: str, schedule: list[str | None], slow_seconds: float = 12.0, *,
                 say=None) -> None:
        """`say(prompt) -> text`: the real server still answers each request, then its reply's text is replaced by
        what `say` returns for the request's last message (a judge test then knows what each verdict must be)."""
        self.upstream, self.schedule, self.slow, self.say = upstream.rstrip("/"), schedule, slow_seconds, say
        self.count = 0
        self.injected: dict[str, int] = {}
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with proxy.lock:
                    fault = proxy.schedule[proxy.count % len(proxy.schedule)]
                    proxy.count += 1
                    if fault:
                        proxy.injected[fault] = proxy.injected.get(fault, 0) + 1
                if fault in ("429", "500", "503"):
                    return self._send(int(fault), b'{"error": "injected"}', {"Retry-After": "1"} if fault == "429" else {})
                if fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "slow":
                    time.sleep(proxy.slow)
                r = httpx.post(proxy.upstream + self.path.removeprefix("/v1"), content=body,
                               headers={"content-type": "application/json"}, timeout=120)
                data = r.content
                if fault == "truncated":
                    data = data[: len(data) // 2]
                elif fault == "malformed":
                    data = b"<html>bad gateway</html>"
                elif fault == "empty_choices":
                    data = json.dumps({**r.json(), "choices": []}).encode()
                elif proxy.say is not None and r.status_code == 200:
                    reply = r.json()
                    prompt = json.loads(body)["messages"][-1]["content"]
                    for ch in reply["choices"]:
                        ch["message"]["content"] = proxy.say(prompt)
                    data = json.dumps(reply).encode()
                elif fault in RESHAPES and r.status_code == 200:
                    reply = r.json()
                    for ch in reply["choices"]:
                        thought = ch["message"]["content"]
                        ch["message"]["reasoning_content"] = thought
                        ch["message"]["content"] = None if fault == "reasoning_only" else "ANSWER: SRE team"
                    data = json.dumps(reply).encode()
                try:
                    self._send(r.status_code, data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on a slow response, as it should

            def _send(self, code, data, headers=None):
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
