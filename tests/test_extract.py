"""Answer extraction on real solution texts in every listed final-answer convention."""

import pytest

from tracestyle.answers.extract import extract_number, verify_answer, verify_kg
from tracestyle.answers.numbers import parse_number

GSM = {"task": "gsm8k", "gold": "18"}


@pytest.mark.parametrize("text,gold", [
    ("Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day.\n#### 18", "18"),
    ("G: daily income\nX1: 16-3-4=9\nX2: 9*2=18\nANSWER: 18", "18"),
    ("She sells 9 eggs at $2 each, so she makes 18 dollars. The answer is 18.", "18"),
    ("So the total is $\\boxed{18}$.", "18"),
    ("Q: how much?\nA: 18", "18"),
    ("Putting it together she earns **$18** per day.", "18"),
    ("9 eggs times 2 dollars gives 18", "18"),
    ("The answer is $1,234.", "1234"),
    ("Final answer: 12.0", "12"),
    ("#### 3/4", "0.75"),
    ("The answer is 25%.", "25"),
    ("The answer is \\frac{1}{2}", "0.5"),
    ("It takes 2/2=1 bolt of white fiber.\nSo the total is 2+1=3.\n#### 3 bolts", "3"),
    ("The answer is -7 degrees.", "-7"),
    ("First draft: the answer is 10.\nWait, recheck: 16-3-4=9, 9*2=18.\nThe answer is 18.", "18"),
])
def test_extraction_agrees_with_gold(text, gold):
    assert verify_answer(text, {"task": "gsm8k", "gold": gold}).ok, text


def test_no_answer_differs_from_wrong_answer():
    assert verify_answer("I am not sure how to do this.", GSM).reason == "no_answer"
    assert verify_answer("#### 17", GSM).reason == "wrong_answer"
    value, raw, how = extract_number("The answer is 42.")
    assert value == 42 and how == "the_answer_is"


def test_numbers():
    assert parse_number("$1,000,000.50") == 1000000.5
    assert parse_number("no digits") is None
    assert parse_number("1/0") is None


def test_kg_entities_and_letters():
    p = {"task": "kg", "gold": "SRE team", "answer_entity": "SRE team", "domain": "devops"}
    assert verify_kg("#### SRE team", p).ok
    assert verify_kg("so the answer is the SRE team.", p).ok
    assert verify_kg("ANSWER: sre team", p).ok
    assert verify_kg("The team you're referring to is the SRE team.", p).ok  # flexible: last entity named
    v = verify_kg("#### SRE", p)
    assert not v.ok and 0 < v.details["f1"] < 1
    mc = {"task": "kg", "gold": "B", "answer_entity": "SRE team", "mc": True, "choices": ["x", "SRE team", "y", "z"]}
    assert verify_kg("#### B", mc).ok and verify_kg("ANSWER: (B)", mc).ok and not verify_kg("#### C", mc).ok
