"""Rows ended inside vLLM by the transformers path's rules, while they are generated: a greedy row stuck in a loop
(distill/loops.py) or a plain-format row that has written the next "Question:" gets its end token forced as its
next token. Runs in vLLM's interpreter only (imported by name by vLLM's engine process).

Why: without it vLLM runs those rows to the token limit and the rule cuts them afterwards, the same rows in the end
but more tokens computed (measured, the quickstart's 200 questions on the base SmolLM2-135M: 29,200 tokens against
the 20,775 transformers computes). The forced token is never part of a row: `end_row` finds the loop or the stop
text at the token before it, as `_greedy_pruned` does (tests/test_vllm.py compares the rows).
"""

from __future__ import annotations

import json
from functools import lru_cache

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

from tracestyle.distill.generation import ended
from tracestyle.distill.loops import LoopWatch

# the key in SamplingParams.extra_args: {"end_token": id, "loops": path of the loop classes or null,
# "stop_text": text or null, "tokenizer": path (for the stop text)}
# rows reach the token limit inside vLLM, which ends them there itself; the shared rule is asked about the rest
_NO_LIMIT = 1 << 30
ARG = "tracestyle_row_ends"


@lru_cache(maxsize=4)
def _watch(path: str, every: int) -> LoopWatch:
    c = json.loads(open(path).read())
    return LoopWatch(None, every, classes=(frozenset(c["numeric"]), frozenset(c["newline"])))


@lru_cache(maxsize=4)
def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


class RowEnds(LogitsProcessor):
    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool) -> None:
        self.rows: dict[int, tuple] = {}    # batch index -> (live output ids, watch, tokenizer, stop text, end token)

    def is_argmax_invariant(self) -> bool:
        return False      # it changes the greedy choice: that is its job

    @staticmethod
    def _add(params, _prompt_ids, output_ids):
        rule = (params.extra_args or {}).get(ARG)
        if not rule:
            return None
        watch = _watch(rule["loops"], rule.get("every", 4)) if rule.get("loops") else None
        tok = _tokenizer(rule["tokenizer"]) if rule.get("stop_text") else None
        return output_ids, watch, tok, rule.get("stop_text"), int(rule["end_token"])

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self.rows, batch_update, self._add)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        for i, (row, watch, tok, stop_text, end) in self.rows.items():
            if not row:
                continue
            # stop tokens end a row inside vLLM already (stop_token_ids); the text and loop rules are the shared ones
            if ended(tok, row, stops=frozenset(), stop_text=stop_text, watch=watch, max_new_tokens=_NO_LIMIT):
                logits[i] = float("-inf")
                logits[i, end] = 0.0
        return logits
