"""Register compliance: each register's rules live in its register.yaml; this module only interprets them."""

from __future__ import annotations

import re
from functools import lru_cache

from tracestyle.verdict import Verdict

_SENTENCE_END = re.compile(r"[.!?](\s|$)")


@lru_cache(maxsize=512)
def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def check_compliance(text: str, rules: dict) -> Verdict:
    """Apply a register's declarative rules; the reason names the first rule broken."""
    lines = [ln for ln in text.strip().split("\n") if ln.strip()]
    if not lines:
        return Verdict(False, "noncompliant:empty")
    if len(lines) < rules.get("min_lines", 1):
        return Verdict(False, "noncompliant:too_few_lines", details={"lines": len(lines)})
    if rules.get("min_sentences") and len(_SENTENCE_END.findall(text)) < rules["min_sentences"]:
        return Verdict(False, "noncompliant:too_few_sentences")
    if "every_line" in rules:
        rx = _rx(rules["every_line"])
        for i, ln in enumerate(lines, 1):
            if not rx.search(ln.strip()):
                return Verdict(False, "noncompliant:unlabelled_line", details={"line": i, "text": ln[:80]})
    if "first_line" in rules and not _rx(rules["first_line"]).search(lines[0].strip()):
        return Verdict(False, "noncompliant:first_line")
    if "last_line" in rules and not _rx(rules["last_line"]).search(lines[-1].strip()):
        return Verdict(False, "noncompliant:last_line", details={"text": lines[-1][:80]})
    for rule in rules.get("require", []):
        if not _rx(rule["pattern"]).search(text):
            return Verdict(False, "noncompliant:missing_" + _slug(rule.get("why", rule["pattern"])))
    for rule in rules.get("forbid", []):
        m = _rx(rule["pattern"]).search(text)
        if m:
            return Verdict(False, "noncompliant:has_" + _slug(rule.get("why", rule["pattern"])),
                           details={"match": m.group(0)[:40]})
    return Verdict(True, "ok")


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")[:40]
