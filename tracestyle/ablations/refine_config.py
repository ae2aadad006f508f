"""The options of a refine run (`refine:` in a grid spec), checked with errors that name the spec's field."""

from __future__ import annotations

from dataclasses import dataclass, fields

from tracestyle.errors import InputError


@dataclass
class RefineConfig:
    rounds: int = 3                     # rounds after round 0
    start: str | None = None            # the register round 0 trains (default: the spec's first)
    per_round: int = 1                  # interventions added per round (one: each gain has one cause)
    # refuse an intervention whose traces the student finds less likely than the last version's by more than this
    # (mean NLL per token, nats); None: measure and report only
    max_nll_increase: float | None = None
    stop: str = "not_better"            # not_better: stop at the first round not better than the last; never
    significant: bool = False           # better means a higher accuracy (False) or a paired test at alpha (True)
    alpha: float = 0.05
    # refuse an intervention after which curation keeps less than this share of what it kept before (it broke the
    # register's format or the teacher's answers)
    min_kept_share: float = 0.5
    only: list[str] | None = None       # consider only these interventions (ids)

    @classmethod
    def parse(cls, d: dict | None, bad=None) -> RefineConfig:
        def fail(msg):
            if bad:
                bad("refine", msg)
            raise InputError(msg, field="refine")
        if d is None:
            d = {}
        if not isinstance(d, dict):
            fail(f"must be a mapping of refine options, got {d!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            fail(f"unknown key(s) {sorted(unknown)} (known: {', '.join(sorted(known))})")
        c = cls(**d)
        if not isinstance(c.rounds, int) or isinstance(c.rounds, bool) or c.rounds < 0:
            fail(f"rounds must be a non-negative integer, got {c.rounds!r}")
        if not isinstance(c.per_round, int) or c.per_round < 1:
            fail(f"per_round must be a positive integer, got {c.per_round!r}")
        if c.max_nll_increase is not None and not isinstance(c.max_nll_increase, (int, float)):
            fail(f"max_nll_increase must be a number (nats per token) or null, got {c.max_nll_increase!r}")
        if c.stop not in ("not_better", "never"):
            fail(f"stop must be not_better or never, got {c.stop!r}")
        if not (0 < c.alpha < 1) or not (0 <= c.min_kept_share <= 1):
            fail("alpha must lie in (0, 1) and min_kept_share in [0, 1]")
        if c.only is not None and not (isinstance(c.only, list) and all(isinstance(x, str) for x in c.only)):
            fail(f"only must be a list of intervention ids, got {c.only!r}")
        return c
