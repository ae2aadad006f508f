"""Ablations: grid specs, token matching, the runner."""
