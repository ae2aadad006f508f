"""Registers: Jinja templates for the teacher prompt (system + user) and the reference render, per task.

A register is a folder with `register.yaml` (name, description, compliance rules) and templates
`system.j2`, `user_<task>.j2`, `render_<task>.j2`. Built-ins live here; users add folders via --registers-dir.
Templates render in Jinja's sandbox with StrictUndefined; errors name the template file and line.

A refined register (tracestyle refine) also lists in its register.yaml the interventions applied to it: each adds
a fragment at a named slot of the reference render (`{{ slot('before_hop', h=h, i=loop.index) }}` in the built-in
templates) and an instruction to an LLM teacher's prompt. A slot with nothing in it renders to nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from tracestyle.errors import InputError
from tracestyle.tasks.text import with_article
from tracestyle.yamlfile import load_yaml

BUILTIN_DIR = Path(__file__).parent
BUILTIN_REGISTERS = ("normal", "gold", "titanium", "diamond")
_ALLOWED_KEYS = {"name", "description", "compliance", "version", "refined_from", "interventions"}
# an empty slot renders to this mark; lines holding only marks are dropped, so a slot on its own line leaves none
_EMPTY_SLOT = "\u2063"


class Templates:
    """A folder of Jinja templates rendered in a sandbox, errors naming the file and line: a register's, or the
    judges' prompts."""

    def __init__(self, folder: Path, label: str = "") -> None:
        self.folder, self.label = Path(folder), label or Path(folder).name
        self._env: SandboxedEnvironment | None = None

    @property
    def env(self) -> SandboxedEnvironment:
        if self._env is None:
            self._env = SandboxedEnvironment(loader=FileSystemLoader(str(self.folder)), undefined=StrictUndefined,
                                             keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True)
            self._env.filters["a"] = with_article   # {{ answer_type | a }} -> "an error", "a fix"
        return self._env

    def template_files(self) -> list[Path]:
        return sorted(self.folder.glob("*.j2"))

    def render(self, template: str, **ctx) -> str:
        path = self.folder / template
        if not path.exists():
            raise InputError(f"{self.label} has no template '{template}'", str(path))
        try:
            return self.env.get_template(template).render(**ctx).strip()
        except TemplateSyntaxError as e:
            raise InputError(f"template syntax error: {e.message}", str(path), e.lineno) from None
        except TemplateError as e:
            raise InputError(f"template error: {e}", str(path), _template_line(e, path)) from None


@dataclass
class Register:
    """A way of writing a trace: its name, description, compliance rules and templates (teacher prompt, reference
    render per task)."""
    name: str
    description: str
    folder: Path
    compliance: dict = field(default_factory=dict)
    # refined registers: what they were refined from, and the interventions applied (prompts/interventions.py)
    refined_from: dict | None = None
    interventions: list[dict] = field(default_factory=list)
    _templates: Templates | None = field(default=None, repr=False)

    @property
    def templates(self) -> Templates:
        if self._templates is None:
            self._templates = Templates(self.folder, f"register '{self.name}'")
        return self._templates

    def template_files(self) -> list[Path]:
        return self.templates.template_files()

    @property
    def version(self) -> str:
        """Content hash of the register's files: a template edit changes it (and every cache key using it)."""
        h = hashlib.sha256()
        for p in [self.folder / "register.yaml", *self.template_files()]:
            h.update(p.name.encode() + b"\0" + p.read_bytes())
        return h.hexdigest()[:12]

    def render(self, template: str, **ctx) -> str:
        return self.templates.render(template, **ctx)

    @property
    def root(self) -> str:
        """The register a refined version descends from (its own name otherwise): which variant of an
        intervention's fragment it takes, and what its compliance rules are."""
        return (self.refined_from or {}).get("root") or self.name

    def teacher_messages(self, task: str, problem: dict) -> list[dict]:
        ctx = {"task": task, "problem": problem, "question": problem["question"], "register": self.name,
               "description": self.description}
        system = self.render("system.j2", **ctx)      # first: its errors are reported first
        user = self.render(f"user_{task}.j2", **ctx)
        extra = [iv["instruction"] for iv in self.interventions if iv.get("task") == task and iv.get("instruction")]
        if extra:
            user += "\n\nAlso, in your solution:\n" + "\n".join(f"- {x}" for x in extra)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def reference(self, task: str, solution: dict) -> str:
        text = self.render(f"render_{task}.j2", task=task, slot=self._slot_fn(task, solution), **solution)
        if _EMPTY_SLOT not in text:
            return text
        lines = [ln for ln in text.split("\n") if ln.replace(_EMPTY_SLOT, "").strip() or _EMPTY_SLOT not in ln]
        return "\n".join(lines).replace(_EMPTY_SLOT, "").strip()

    def _slot_fn(self, task: str, solution: dict):
        """slot(name, lead='', trail='', **vars): the fragments of the interventions at that slot, rendered with the
        solution and the loop's vars (h and i for a hop, s and i for a step); empty ones are left out."""
        frags = [iv for iv in self.interventions if iv.get("task") == task and iv.get("render")]

        def slot(name: str, lead: str = "", trail: str = "", **local) -> str:
            parts = []
            for iv in (f for f in frags if f["slot"] == name):
                try:
                    t = self.templates.env.from_string(iv["render"]).render(**solution, **local).strip()
                except TemplateError as e:
                    raise InputError(f"intervention '{iv['id']}': template error: {e}",
                                     str(self.folder / "register.yaml"), None, "interventions") from None
                if t:
                    parts.append(t)
            if not parts:
                return _EMPTY_SLOT
            return lead + (" " if lead or trail else "\n").join(parts) + trail
        return slot


def _template_line(exc: Exception, path: Path) -> int | None:
    import traceback

    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == str(path) or frame.filename.endswith(path.name):
            return frame.lineno
    return None


def load_register(folder: str | Path) -> Register:
    folder = Path(folder)
    meta_path = folder / "register.yaml"
    if not meta_path.exists():
        raise InputError("register folder has no register.yaml", str(meta_path))
    meta = load_yaml(meta_path) or {}
    if not isinstance(meta, dict):
        raise InputError("expected a mapping", str(meta_path), 1)
    unknown = set(meta) - _ALLOWED_KEYS
    if unknown:
        raise InputError("unknown key", str(meta_path), None, sorted(unknown)[0])
    if not (folder / "system.j2").exists():
        raise InputError("register has no system.j2", str(folder / "system.j2"))
    reg = Register(str(meta.get("name", folder.name)), str(meta.get("description", "")), folder,
                   meta.get("compliance") or {}, meta.get("refined_from"), meta.get("interventions") or [])
    # compile every template now, so a syntax error surfaces before any work is done
    for p in reg.template_files():
        try:
            reg.templates.env.get_template(p.name)
        except TemplateSyntaxError as e:
            raise InputError(f"template syntax error: {e.message}", str(p), e.lineno) from None
    return reg


def load_registers(names: list[str] | None = None, registers_dir: str | Path | None = None) -> dict[str, Register]:
    """Built-in registers plus the register folders under registers_dir, keyed by the `name:` in their
    register.yaml (the folder name when it has none). A user register overrides a built-in of the same name."""
    found: dict[str, Register] = {n: load_register(BUILTIN_DIR / n) for n in BUILTIN_REGISTERS}
    if registers_dir:
        rd = Path(registers_dir)
        if not rd.is_dir():
            raise InputError("registers dir is not a directory", str(rd))
        if (rd / "register.yaml").exists():
            raise InputError("this is one register's folder; pass the folder that holds register folders",
                             str(rd))
        users: dict[str, Path] = {}
        for sub in sorted(rd.iterdir()):
            if (sub / "register.yaml").exists():
                reg = load_register(sub)
                if reg.name in users:
                    raise InputError(f"register name '{reg.name}' is also used by {users[reg.name]}",
                                     str(sub / "register.yaml"), None, "name")
                users[reg.name] = sub
                found[reg.name] = reg
    wanted = names or list(found)
    out = {}
    for n in wanted:
        if n not in found:
            raise InputError(f"unknown register '{n}' (known: {', '.join(sorted(found))})", field="registers")
        out[n] = found[n]
    return out
