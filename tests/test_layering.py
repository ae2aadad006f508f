"""The package's shape stays true: import-linter's contracts hold and no module is in an import cycle."""

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    r = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "broken" not in r.stdout.split("Contracts:")[-1].replace("0 broken", "")


def test_no_module_is_in_an_import_cycle():
    graph = grimp.build_graph("tracestyle")
    cycles = []
    for mod in sorted(graph.modules):
        for other in graph.find_modules_directly_imported_by(mod):
            # a path back from the imported module to the importer closes a cycle
            if graph.find_shortest_chain(importer=other, imported=mod):
                cycles.append((mod, other))
    # a package's __init__ re-exporting its submodules is not a cycle of the code's layering
    cycles = [(a, b) for a, b in cycles if not (b.startswith(a + ".") or a.startswith(b + "."))]
    assert not cycles, cycles[:10]
