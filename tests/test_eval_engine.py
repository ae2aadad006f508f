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


@pytest.mark.parametrize("student,fmt", [("smollm2-135m", "chat"), ("gemma3-270m", "plain")])
def test_pruned_batch_decoding_is_transformers_generate(student, fmt):
    """Greedy decoding drops finished rows from the batch and its cache; each row must still be what transformers'
    own `generate` writes for that prompt alone (float32), in text, token count and cut-off flag."""
    import torch

    from tracestyle.distill.examples import build_prompt, end_text
    from tracestyle.distill.generation import Decoding, finish_row, generate_batch, load_for_generation
    from tracestyle.tasks.kg.questions import generate_kg_problems

    qs = [p["question"] for p in generate_kg_problems("devops", "eval", 8, 9, {"train": (1, 3), "eval": (1, 5)})]
    model, tok = load_for_generation(student, None, "cpu")
    dec = Decoding(40, fmt=fmt)
    ours = generate_batch(model, tok, qs, dec)
    stop = [i for i in {tok.eos_token_id, tok.convert_tokens_to_ids(end_text(tok, fmt)) if end_text(tok, fmt)
                        else None} if isinstance(i, int) and i >= 0]
    for i, q in enumerate(qs):
        enc = tok([build_prompt(tok, q, fmt)], return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=40, do_sample=False, eos_token_id=stop,
                                 pad_token_id=tok.pad_token_id)
        ids = out[0, enc["input_ids"].shape[1]:].tolist()
        cut = next((k for k, t in enumerate(ids) if t in stop), len(ids))
        text, cut_off = finish_row(tok, ids[:cut], stopped=cut < len(ids), fmt=fmt, at_limit=cut >= 40)
        assert ours["texts"][i] == text, (i, ours["texts"][i], text)
        if fmt == "chat":   # a plain row ends at the next "Question:", which generate runs past
            assert ours["tokens"][i] == len(ids) and ours["truncated"][i] == cut_off
