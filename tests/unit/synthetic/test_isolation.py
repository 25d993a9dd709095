"""The synthetic data stay apart from the product, read from the source with ``ast``.

rapidrelease.synthetic writes the demo lots and simulated reads with known truth. A product module
that imported it could let simulated data reach a release decision; a synthetic module that
imported a stage could compute its "truth" with the code that truth is meant to check. So: no module
outside rapidrelease/synthetic imports it, anywhere in the module, except the ``simulate-demo``
subcommand (``cli._cmd_simulate_demo``), which imports it when run; and the synthetic modules
import only the public product APIs listed in ``PRODUCT_APIS``. Widening either is a deliberate
edit of this file.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import rapidrelease

PACKAGE_DIR = Path(rapidrelease.__file__).resolve().parent
SYNTHETIC = "rapidrelease.synthetic"
ENTRY = ("rapidrelease.cli", "_cmd_simulate_demo")
"""The one way in from the product: (module, function) that may import rapidrelease.synthetic."""
PRODUCT_APIS = {
    "rapidrelease.errors": "the error the truth tables raise for a metric they cannot count",
    "rapidrelease.outputs": "atomic writes, tables and text in the product's own formats",
    "rapidrelease.reads.fasta": "reading the reference panel the demo's reads are drawn from",
    # the synthetic history (synthetic/demo/archive.py): earlier lots' metrics are drawn, then decided
    # and sealed as the pipeline would have, so that the archive is real release.json; it is no truth
    # that anything is checked against
    "rapidrelease.config.run": "the in-memory lot and unit sheets the synthetic history is decided with",
    "rapidrelease.config.specs": "the demo's specifications the synthetic history is decided against",
    "rapidrelease.records": "the typed records the synthetic history is written as, sealed",
    "rapidrelease.release.decision": "the decision that decides the synthetic history's drawn metrics",
    "rapidrelease.stats": "Wilson intervals of the synthetic history's drawn counts",
}
"""The product modules rapidrelease.synthetic may import, and what it uses each for."""


@dataclass(frozen=True)
class Import:
    """One import in a module: the modules it names, where, and the function it sits in (None: at
    module level or in a class body)."""

    module: str
    line: int
    targets: tuple[str, ...]
    names: tuple[str, ...]
    function: str | None


def module_name(path: Path) -> str:
    parts = ("rapidrelease", *path.relative_to(PACKAGE_DIR).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def in_synthetic(name: str) -> bool:
    return name == SYNTHETIC or name.startswith(SYNTHETIC + ".")


def _from_base(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` reads from (relative imports resolved, PEP 328)."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


class _ImportCollector(ast.NodeVisitor):
    """Every import statement, and every ``importlib.import_module``/``__import__`` of a literal."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.function: list[str] = []
        self.found: list[Import] = []

    def _add(self, node: ast.AST, targets: list[str], names: list[str]) -> None:
        function = self.function[-1] if self.function else None
        self.found.append(Import(self.module, node.lineno, tuple(targets), tuple(names), function))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.function.append(node.name)
        self.generic_visit(node)
        self.function.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Import(self, node: ast.Import) -> None:
        self._add(node, [alias.name for alias in node.names], [])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _from_base(self.module, node)
        # ``from pkg import sub`` imports the submodule pkg.sub; any other name is an attribute of pkg
        submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
        names = [alias.name for alias in node.names if f"{base}.{alias.name}" not in MODULES]
        self._add(node, [base, *submodules] if names else submodules, names)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if called in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self._add(node, [first.value], [])
        self.generic_visit(node)


def imports_of(module: str) -> list[Import]:
    collector = _ImportCollector(module)
    collector.visit(ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module])))
    return collector.found


def test_the_package_is_where_the_test_looks() -> None:
    assert ENTRY[0] in MODULES
    assert {SYNTHETIC, f"{SYNTHETIC}.reads", f"{SYNTHETIC}.demo.simulate"} <= set(MODULES)
    assert all(module in MODULES for module in PRODUCT_APIS)


def test_no_product_module_imports_synthetic_except_the_simulate_demo_command() -> None:
    offending = [
        f"{found.module}:{found.line} (in {found.function or 'module body'}) imports {target}"
        for module in MODULES
        if not in_synthetic(module)
        for found in imports_of(module)
        for target in found.targets
        if in_synthetic(target) and (found.module, found.function) != ENTRY
    ]
    assert offending == [], "the product must not import rapidrelease.synthetic:\n" + "\n".join(offending)


def test_simulate_demo_reaches_synthetic_only_when_run() -> None:
    module, function = ENTRY
    entry = [found for found in imports_of(module) if any(in_synthetic(t) for t in found.targets)]
    # the one exception is in use, inside the function, so importing the CLI loads no synthetic module
    assert entry and all(found.function == function for found in entry)


def test_synthetic_imports_only_the_public_product_apis_it_needs() -> None:
    offending = []
    for module in filter(in_synthetic, MODULES):
        for found in imports_of(module):
            for target in found.targets:
                if target.partition(".")[0] != "rapidrelease" or in_synthetic(target):
                    continue
                if target not in PRODUCT_APIS:
                    offending.append(f"{module}:{found.line} imports {target}, not in PRODUCT_APIS")
                private = [n for n in (*target.split("."), *found.names) if n.startswith("_")]
                if private:
                    offending.append(f"{module}:{found.line} imports private {', '.join(private)}")
    assert offending == [], "\n".join(offending)


def test_importing_every_product_module_loads_no_synthetic_module() -> None:
    """The same at run time, in a fresh interpreter, catching what the source does not show."""
    product = [m for m in MODULES if not in_synthetic(m) and not m.endswith("__main__")]
    code = (
        "import importlib, sys\n"
        f"for name in {product!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m == {SYNTHETIC!r} or m.startswith({SYNTHETIC + '.'!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_workflow_names_no_synthetic_module(project_root: Path) -> None:
    """The rules import rapidrelease too (common.smk); they never reach the synthetic data."""
    offending = []
    for path in sorted((project_root / "workflow").rglob("*")):
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        if SYNTHETIC in text or "simulate-demo" in text:
            offending.append(path.relative_to(project_root).as_posix())
    assert offending == []
