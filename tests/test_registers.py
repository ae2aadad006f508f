"""Every register on real GSM8K test problems and 1,000 KG problems: its checker accepts its own traces,
rejects the other registers' traces relabelled as its own, and `correct` keeps every template trace."""

import pytest

from tracestyle.answers.numbers import all_numbers, parse_number
from tracestyle.curate.compliance import check_compliance
from tracestyle.curate.teachers.template import template_trace
from tracestyle.errors import InputError
from tracestyle.prompts import load_registers
from tracestyle.tasks import task_of
from tracestyle.tasks.gsm8k.source import load_gsm8k
from tracestyle.tasks.kg.path import verify_kg_path
from tracestyle.tasks.kg.questions import generate_kg_problems
from tracestyle.tasks.kg.refs import get_kg

REGS = load_registers()


@pytest.fixture(scope="module")
def corpora(gsm8k_dir):
    kg_probs = generate_kg_problems("devops", "train", 500, 0) + generate_kg_problems("world", "eval", 300, 0) + \
        generate_kg_problems("world", "train", 200, 0, mc=True)
    out = {}
    for task, probs in (("gsm8k", load_gsm8k("test", gsm8k_dir)), ("kg", kg_probs)):
        out[task] = (probs, {r: [template_trace(p, REGS[r]) for p in probs] for r in REGS})
    return out


@pytest.mark.parametrize("task", ["gsm8k", "kg"])
def test_compliance_accepts_own_rejects_others(corpora, task):
    probs, traces = corpora[task]
    assert len(probs) >= 1000
    for r in REGS:
        own = sum(check_compliance(t, REGS[r].compliance).ok for t in traces[r]) / len(probs)
        assert own >= 0.99, (task, r, own)
        for other in REGS:
            if other != r:
                wrongly = sum(check_compliance(t, REGS[r].compliance).ok for t in traces[other]) / len(probs)
                assert wrongly <= 0.05, (task, r, other, wrongly)


@pytest.mark.parametrize("task", ["gsm8k", "kg"])
def test_correct_keeps_every_template_trace(corpora, task):
    probs, traces = corpora[task]
    for r in REGS:
        bad = [(p["id"], t) for p, t in zip(probs, traces[r]) if not task_of(p).check_answer(p, t).ok]
        assert not bad, bad[:2]


def test_kg_path_validates_template_traces_and_catches_errors(corpora):
    probs, traces = corpora["kg"]
    kgs = {d: get_kg(d) for d in ("devops", "world")}
    for r in REGS:
        assert all(verify_kg_path(t, p, kgs[p["domain"]]).ok for p, t in zip(probs, traces[r])), r
    p = next(p for p in probs if p["domain"] == "devops" and not p["path"][0]["inverse"])
    h = p["path"][0]
    inverted = f"{h['to']} {h['phrase']} {h['from']}."
    v = verify_kg_path(inverted, p, kgs["devops"])
    assert v.reason == "kg_path:inverted_edge" and v.details["invalid_hops"][0]["kind"] == "inverted"
    v = verify_kg_path("disk full leads to Grafana.", p, kgs["devops"])
    assert v.reason == "kg_path:hallucinated_edge"


def test_same_content_across_registers(corpora):
    probs, traces = corpora["gsm8k"]
    for i in range(20):
        for step in probs[i]["steps"]:
            for c in step["calcs"]:
                # the calculator result appears in every register's trace
                v = parse_number(c["result"])
                assert all(v in all_numbers(traces[r][i]) for r in REGS), (i, c)


def test_user_register_folder(tmp_path):
    d = tmp_path / "regs" / "terse"
    d.mkdir(parents=True)
    (d / "register.yaml").write_text("name: terse\ndescription: one line\ncompliance:\n  last_line: '^=> '\n")
    (d / "system.j2").write_text("Be terse.")
    (d / "user_kg.j2").write_text("{{ question }}")
    (d / "render_kg.j2").write_text("{% for h in hops %}{{ h.tail }} {% endfor %}\n\n=> {{ final }}")
    regs = load_registers(["terse", "normal"], tmp_path / "regs")
    p = generate_kg_problems("devops", "train", 1, 0)[0]
    t = template_trace(p, regs["terse"])
    assert t.endswith("=> " + p["gold"]) and check_compliance(t, regs["terse"].compliance).ok
    assert regs["terse"].teacher_messages("kg", p)[1]["content"] == p["question"]


@pytest.mark.parametrize("body,needle", [
    ("{{ question", "syntax error"),
    ("{% for x in %}", "syntax error"),
])
def test_template_syntax_errors_name_file_and_line(tmp_path, body, needle):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "register.yaml").write_text("name: bad\n")
    (d / "system.j2").write_text("ok\n" + body)
    with pytest.raises(InputError, match=needle) as e:
        load_registers(["bad"], tmp_path)
    assert "system.j2:2" in str(e.value)


def test_undefined_variable_and_sandbox(tmp_path):
    d = tmp_path / "evil"
    d.mkdir()
    (d / "register.yaml").write_text("name: evil\n")
    (d / "system.j2").write_text("line one\n{{ nonexistent_var }}")
    (d / "user_kg.j2").write_text("{{ question.__class__.__mro__[1].__subclasses__() }}")
    reg = load_registers(["evil"], tmp_path)["evil"]
    p = generate_kg_problems("devops", "train", 1, 0)[0]
    with pytest.raises(InputError, match="system.j2:2.*undefined"):
        reg.teacher_messages("kg", p)
    with pytest.raises(InputError, match="user_kg.j2.*unsafe|user_kg.j2.*not safely"):
        reg.render("user_kg.j2", question="x")
