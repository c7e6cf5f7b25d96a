"""The package's import graph: no cycles (imports inside functions included), and no lower layer
importing an upper one. Type-only imports (``if TYPE_CHECKING:``) are not dependencies at run time
and are left out."""

import ast
from pathlib import Path

SOURCE = Path(__file__).parents[1] / "src"

#: package → the loralab packages it must never import (directly or from inside a function)
FORBIDDEN = {
    "loralab.models": ("lora", "quant", "data", "eval", "train", "analysis", "chat", "export", "studies", "cli"),
    "loralab.data": ("lora", "quant", "eval", "train", "analysis", "chat", "export", "studies", "cli"),
    "loralab.lora": ("quant", "eval", "train", "analysis", "chat", "export", "studies", "cli"),
    "loralab.quant": ("eval", "train", "analysis", "chat", "export", "studies", "cli"),
    "loralab.eval": ("train", "analysis", "chat", "export", "studies", "cli"),
    "loralab.train": ("analysis", "chat", "export", "studies", "cli"),
    "loralab.analysis": ("chat", "export", "studies", "cli"),
    "loralab.chat": ("analysis", "export", "studies", "cli"),
    "loralab.export": ("analysis", "chat", "studies", "cli"),
    "loralab.studies": ("chat", "export", "cli"),  # a study may run analyses of its trials
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SOURCE / "loralab").rglob("*.py"):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """loralab modules imported anywhere in ``path`` (``from pkg import sub`` counts as pkg.sub only)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _is_type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            found.update(subs if subs else [base] if base in modules else [])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            connect(v)
    return found


def test_the_checker_sees_imports_inside_functions_and_cycles(tmp_path):
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    path = tmp_path / "merge.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from loralab.train import trainer\n"
                    "def f():\n    from loralab.lora import io\n    import loralab.quant.nf4_linear\n")  # fmt: skip
    modules = _modules()
    assert _imports("loralab.lora.merge", path, modules) == {"loralab.lora.io", "loralab.quant.nf4_linear"}


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_no_lower_layer_imports_an_upper_one():
    bad = []
    for module, imported in _graph().items():
        for package, forbidden in FORBIDDEN.items():
            if module == package or module.startswith(package + "."):
                bad += [f"{module} imports {name}" for name in imported
                        if any(name == f"loralab.{f}" or name.startswith(f"loralab.{f}.") for f in forbidden)]  # fmt: skip
    assert bad == []
