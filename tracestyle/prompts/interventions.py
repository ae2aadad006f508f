"""Interventions as data: the trace change that addresses a failure category (interventions.yaml beside this
module; users add or override them by id in `interventions.yaml` of a registers folder or a register folder), and
register versions that apply them: a new register folder named by its content hash, with a note of what changed."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from tracestyle.errors import InputError
from tracestyle.prompts import Register, load_register
from tracestyle.yamlfile import key_line, load_yaml

BUILTIN = Path(__file__).with_name("interventions.yaml")
SLOTS = {"start", "before_hop", "after_hop", "before_step", "after_step", "before_answer"}
_KEYS = {"addresses", "change", "slot", "render", "instruction"}


@dataclass(frozen=True)
class Intervention:
    id: str
    task: str                   # the template set it applies to (kg, gsm8k, ...)
    addresses: tuple[str, ...]
    change: str
    slot: str
    render: dict                # register -> fragment (None: that register does not take it); "default"
    instruction: dict
    source: str                 # the file it was read from

    @staticmethod
    def _pick(table: dict, register: Register) -> str | None:
        return table[register.root] if register.root in table else table.get("default")

    def for_register(self, register: Register, teacher: str) -> dict | None:
        """This intervention as written into a version of `register` (its variant for the register's root), or None
        when it does not apply: no fragment for the template teacher, no instruction for an LLM teacher."""
        render, instruction = self._pick(self.render, register), self._pick(self.instruction, register)
        if (render if teacher == "template" else instruction) is None:
            return None
        return {"id": self.id, "task": self.task, "addresses": list(self.addresses), "change": self.change,
                "slot": self.slot, "render": render, "instruction": instruction}


def load_interventions(task: str, files: list[Path | str] = (), categories: tuple[str, ...] | None = None
                       ) -> dict[str, Intervention]:
    """The built-in interventions of a template set, then each file's (a later file overrides an id); errors name
    the file, the line and the field."""
    found: dict[str, Intervention] = {}
    for f in [BUILTIN, *[Path(x) for x in files]]:
        if not f.exists():
            continue
        data = load_yaml(f) or {}
        if not isinstance(data, dict):
            raise InputError("expected a mapping of template set -> {id: intervention}", str(f), 1)
        for tset, items in data.items():
            if not isinstance(items, dict):
                raise InputError("expected a mapping of id -> intervention", str(f), key_line(f, tset), tset)
            if tset != task:
                continue
            for iid, d in items.items():
                found[iid] = _parse(f, tset, iid, d, categories)
    return found


def _parse(f: Path, tset: str, iid: str, d, categories) -> Intervention:
    def bad(field: str, msg: str):
        raise InputError(f"intervention '{iid}': {msg}", str(f), key_line(f, field if field != "id" else iid) or
                         key_line(f, iid), field)
    if not isinstance(d, dict):
        bad("id", "expected a mapping with addresses, change, slot, render, instruction")
    unknown = set(d) - _KEYS
    if unknown:
        bad(sorted(unknown)[0], f"unknown key (known: {', '.join(sorted(_KEYS))})")
    addresses = d.get("addresses")
    if not isinstance(addresses, list) or not addresses or not all(isinstance(a, str) for a in addresses):
        bad("addresses", "must be a non-empty list of failure categories")
    if categories is not None:
        for a in addresses:
            if a not in categories:
                bad("addresses", f"unknown failure category '{a}' (this task's: {', '.join(categories)})")
    if d.get("slot") not in SLOTS:
        bad("slot", f"must be one of {', '.join(sorted(SLOTS))}, got {d.get('slot')!r}")
    if not isinstance(d.get("change"), str) or not d["change"].strip():
        bad("change", "must say in words what the intervention changes")
    tables = {}
    env = SandboxedEnvironment()
    for k in ("render", "instruction"):
        v = d.get(k) or {}
        if isinstance(v, str):
            v = {"default": v}
        if not isinstance(v, dict) or not all(x is None or isinstance(x, str) for x in v.values()):
            bad(k, "must be a text or a mapping register -> text (null: not for that register)")
        if k == "render":
            for reg, frag in v.items():
                try:
                    env.parse(frag or "")
                except TemplateSyntaxError as e:
                    bad(k, f"template syntax error in the {reg} fragment: {e.message}")
        tables[k] = v
    if not tables["render"] and not tables["instruction"]:
        bad("render", "needs a render fragment (template teacher) or an instruction (LLM teacher)")
    return Intervention(iid, tset, tuple(addresses), d["change"].strip(), d["slot"], tables["render"],
                        tables["instruction"], str(f))


def intervention_files(registers_dir: str | Path | None, register: Register) -> list[Path]:
    """Where users keep their own: the registers folder's interventions.yaml, then the start register's own."""
    out = [Path(registers_dir) / "interventions.yaml"] if registers_dir else []
    return out + [register.folder / "interventions.yaml"]


def applied_ids(register: Register) -> list[str]:
    return [iv["id"] for iv in register.interventions]


def write_version(base: Register, added: list[dict], out_dir: Path, *, round_no: int) -> Register:
    """A new register folder: `base`'s templates, its register.yaml with the interventions so far plus `added`, and
    a note. Named `<root>-r<round>-<content hash>`, so the same content gets the same folder (two students that
    choose the same change share its traces)."""
    import yaml

    meta = load_yaml(base.folder / "register.yaml") or {}
    ivs = list(base.interventions) + added
    body = {k: v for k, v in meta.items() if k not in ("name", "refined_from", "interventions")}
    h = hashlib.sha256(repr(sorted((k, repr(v)) for k, v in body.items())).encode())
    for p in sorted(base.folder.glob("*.j2")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    h.update(repr(ivs).encode())
    name = f"{base.root}-r{round_no}-{h.hexdigest()[:8]}"
    folder = out_dir / name
    if not (folder / "register.yaml").exists():
        tmp = out_dir / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for p in base.folder.glob("*.j2"):
            shutil.copy2(p, tmp / p.name)
        meta_out = {"name": name, **body,
                    "refined_from": {"root": base.root, "register": base.name, "version": base.version,
                                     "round": round_no},
                    "interventions": ivs}
        (tmp / "register.yaml").write_text(yaml.safe_dump(meta_out, sort_keys=False, allow_unicode=True, width=110))
        (tmp / "NOTE.md").write_text(
            f"# {name}\n\nRound {round_no}, refined from `{base.name}` (version {base.version}).\n\n"
            + "".join(f"- added `{iv['id']}`: {iv['change']} (addresses {', '.join(iv['addresses'])})\n"
                      for iv in added)
            + "\nChosen by the students whose failures it addresses (refine writes one line per student):\n")
        tmp.rename(folder)
    return load_register(folder)


def copy_register(reg: Register, out_dir: Path) -> Register:
    """The start register's folder copied beside its versions (same files, same content hash)."""
    folder = out_dir / reg.name
    if not (folder / "register.yaml").exists():
        tmp = out_dir / f".{reg.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(reg.folder, tmp, ignore=shutil.ignore_patterns("__pycache__", "*.py*"))
        tmp.rename(folder)
    return load_register(folder)
