"""Teacher tokens and cost: the usage the real llama.cpp server reports, per register, priced from a user table."""

import json

from tracestyle.curate.cost import load_prices, usage_by_register

from conftest import run_cli


def test_usage_and_cost_per_register_from_the_real_server(tmp_path, llama_server, gsm8k_dir):
    prices = tmp_path / "prices.yaml"
    prices.write_text("smollm2: {input: 1.0, output: 2.0}\n")
    probs = tmp_path / "p.jsonl"
    assert run_cli("problems", "--task", "gsm8k", "--data", str(gsm8k_dir), "--split", "test", "--n", "3",
                   "--out", str(probs)).returncode == 0
    out = tmp_path / "gen"
    r = run_cli("generate", "--problems", str(probs), "--registers", "normal,titanium", "--teacher", "openai",
                "--base-url", llama_server["base_url"], "--model", "smollm2", "--max-tokens", "24",
                "--prices", str(prices), "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (out / "traces.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(x["usage"]["prompt_tokens"] > 0 and 0 < x["usage"]["completion_tokens"] <= 24
                                  for x in rows)
    per = json.loads((out / "manifest.json").read_text())["usage"]["per_register"]
    for reg in ("normal", "titanium"):
        mine = [x["usage"] for x in rows if x["register"] == reg]
        p, c = sum(u["prompt_tokens"] for u in mine), sum(u["completion_tokens"] for u in mine)
        assert per[reg]["prompt_tokens"] == round(p) and per[reg]["completion_tokens"] == round(c)
        assert abs(per[reg]["cost_usd"] - (p * 1.0 + c * 2.0) / 1e6) < 1e-6
    st = run_cli("stats", str(out / "traces.jsonl"), "--tokenizer", "whitespace", "--json", "--prices", str(prices))
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["registers"]["normal"]["teacher_usage"]["cost_usd"] == per["normal"]["cost_usd"]


def test_models_without_a_price_are_named(tmp_path):
    rows = [{"register": "gold", "teacher_model": "big", "usage": {"prompt_tokens": 10, "completion_tokens": 5}}]
    u = usage_by_register(rows, {"other": {"input": 1, "output": 1}})
    assert u["gold"]["unpriced_models"] == ["big"] and "cost_usd" not in u["gold"]
    assert usage_by_register([{"register": "gold", "text": "template rows have no usage"}]) == {}


def test_bad_price_table_names_file_line_and_model(tmp_path):
    p = tmp_path / "prices.yaml"
    p.write_text("gpt-x: {input: 0.1, output: 0.2}\nbroken: {input: cheap}\n")
    try:
        load_prices(p)
    except Exception as e:
        assert str(p) in str(e) and ":2" in str(e) and "broken" in str(e), str(e)
    else:
        raise AssertionError("a non-numeric price must be refused")
