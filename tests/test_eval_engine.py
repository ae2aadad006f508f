"""The fast evaluation engine (CTranslate2 over the merged float32 weights) against transformers' own greedy
`generate` at batch 1 on the same prompts: the same tokens, a cached conversion, adapters merged in."""

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("student,fmt", [("smollm2-135m", "chat"), ("gemma3-270m", "plain")])
def test_ct2_greedy_matches_transformers(student, fmt):
    pytest.importorskip("ctranslate2")
    from tracestyle.distill.engine_ct2 import CT2Generator
    from tracestyle.distill.generation import Decoding, generate_batch, load_for_generation
    from tracestyle.distill.loops import LoopWatch
    from tracestyle.tasks.kg.questions import generate_kg_problems

    qs = [p["question"] for p in generate_kg_problems("devops", "eval", 6, 5, {"train": (1, 3), "eval": (1, 3)})]
    model, tok = load_for_generation(student, None, "cpu")
    dec = Decoding(24, fmt=fmt)
    watch = LoopWatch(tok)
    peer = [generate_batch(model, tok, [q], dec, watch=watch) for q in qs]
    ours = CT2Generator(student, None).generate(qs, dec, batch_size=6)
    same = sum(p["texts"][0] == t for p, t in zip(peer, ours["texts"]))
    assert same == len(qs), [(p["texts"][0], t) for p, t in zip(peer, ours["texts"])]
    # the same rows in everything else: both stop at the next "Question:" (plain) and inside loops
    assert ours["truncated"] == [p["truncated"][0] for p in peer]
    assert ours["tokens"] == [p["tokens"][0] for p in peer]
    assert ours["loops_stopped"] == sum(p["loops_stopped"] for p in peer)
