"""Repetition measures shared by the RSFT reward, answer extraction and the failure taxonomy."""

from __future__ import annotations


def repeated_share(text: str, n: int = 4) -> float:
    """Share of repeated lines and word n-grams (the larger): loops score near 1, clean traces near 0."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    rep_lines = 1 - len(set(lines)) / len(lines) if lines else 0.0
    words = text.split()
    grams = [tuple(words[i: i + n]) for i in range(max(0, len(words) - n + 1))]
    rep_grams = 1 - len(set(grams)) / len(grams) if grams else 0.0
    return max(rep_lines, rep_grams)


def is_loop(text: str) -> bool:
    return len(text.split()) >= 24 and repeated_share(text) >= 0.5


def looks_cut_off(text: str) -> bool:
    """A loop that does not end at a line or sentence end most likely ran into the token limit."""
    t = text.rstrip(" \t")
    return is_loop(t) and not t.endswith(("\n", ".", "!", "?"))
