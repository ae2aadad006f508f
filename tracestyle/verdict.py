"""The verdict every verifier returns: pure data, so filters and the failure taxonomy can share it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Verdict:
    ok: bool
    reason: str                      # "ok" or a short machine-readable cause, e.g. "no_answer", "wrong_answer"
    extracted: str | None = None
    details: dict = field(default_factory=dict)
