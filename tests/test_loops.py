"""The evaluation loop stopper: it stops what greedy students really loop on, never a correct trace, and a stopped
row scores as the loop's own content (not the arbitrary fragment the token limit would have cut)."""

from __future__ import annotations

import pytest

from tracestyle.answers.extract import drop_cut_fragment
from tracestyle.curate.teachers.template import template_trace
from tracestyle.distill.loops import LoopWatch, in_loop, token_classes
from tracestyle.distill.models import load_tokenizer
from tracestyle.prompts import load_registers
from tracestyle.tasks.gsm8k.source import load_gsm8k
from tracestyle.tasks.kg.questions import generate_kg_problems


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("smollm2-135m")


def first_stop(watch: LoopWatch, ids: list[int]) -> int | None:
    return next((n for n in range(1, len(ids) + 1) if watch.stuck(ids[:n])), None)


def ids_of(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


ORDINALS = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
            "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth").split()
# outputs of the bundled students on the quickstart's questions, shortened (the real ones ran to 266 tokens)
LOOPS = {
    "numbered list, one line": "".join(f"{i}. The service is not available.\n" for i in range(1, 30)),
    "numbered list with ordinals": "".join(f"{i}. The service \"billing service\" is the {w} service to be used.\n"
                                           for i, w in enumerate(ORDINALS, 1)),
    "step labels": "Step 1: Datadog is a tool.\n" + "".join(f"Step {i}: The product is a product.\n"
                                                            for i in range(2, 20)),
    "verbatim": "SRE team\nNetwork team\nPlatform team\n" * 8,
    "short unit": "ANSWER: 1/2/" + "2/" * 40,
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_real_loop_shapes_are_stopped_early(tok, name):
    ids = ids_of(tok, LOOPS[name])
    n = first_stop(LoopWatch(tok), ids)
    assert n is not None and n < 0.6 * len(ids), (name, n, len(ids))


def test_correct_traces_are_never_stopped(tok, gsm8k_dir):
    """Template traces of all four registers: GSM8K (arithmetic repeating a line's shape with other numbers:
    "On the third bounce, it reaches 24 / 2 = 12 feet.") and KG paths (one relation over and over)."""
    regs = load_registers(["normal", "gold", "titanium", "diamond"])
    problems = load_gsm8k("train", gsm8k_dir, n=400) + generate_kg_problems("devops", "train", 100, 2)
    watch = LoopWatch(tok)
    stopped = [(p["id"], r) for p in problems for r, reg in regs.items()
               if first_stop(watch, ids_of(tok, template_trace(p, reg)))]
    assert stopped == []
    bounce = "".join(f"On the {w} bounce, it will reach a height of {h} / 2 = {h // 2} feet.\n"
                     for w, h in zip(["first", "second", "third", "fourth", "fifth", "sixth"], [96, 48, 24, 12, 6, 4]))
    assert first_stop(watch, ids_of(tok, bounce)) is None


def test_item_numbers_only_at_line_start(tok):
    numeric, newline = token_classes(tok)
    assert numeric and newline
    same_shape = "".join(f"X{i}: {a} * 2 = {a * 2}\n" for i, a in enumerate([3, 7, 11, 19, 23, 31, 43, 57], 1))
    assert not in_loop(ids_of(tok, same_shape), (numeric, newline))
    assert in_loop(ids_of(tok, "".join(f"{i}. Restart the pod.\n" for i in range(1, 14))), (numeric, newline))


def test_cut_off_list_marker_is_not_an_answer():
    # a list cut by the token limit right after its next item number: "31." is no finished sentence
    assert drop_cut_fragment("30. Route to SRE team\n31. Route") == "30. Route to SRE team\n"
    assert drop_cut_fragment("The answer is 12. The ans") == "The answer is 12."
