"""The layers of the package, enforced: nothing imports upward.

``pyproject.toml`` declares the layers as an import-linter contract (run here through
``lint-imports``); the AST walk below checks the same rule independently, function-level imports
included, so that an import hidden in a function to dodge a circle fails too.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return contract


def _layer_of(module: str, layers: list[list[str]]) -> int | None:
    for i, group in enumerate(layers):
        if any(module == g or module.startswith(g + ".") for g in group):
            return i
    return None


def _imports(path: Path, module: str):
    """``(target module, line, function-level?)`` of every skrel import in ``path``."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                targets = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            else:
                targets = [node.module or ""]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            if t == "skrel" or t.startswith("skrel."):
                yield t, node.lineno, node.col_offset > 0


def test_no_module_imports_a_higher_layer():
    contract = _contract()
    layers = [[m.strip() for m in layer.split("|")] for layer in contract["layers"]]
    ignored = [rule.split(" -> ")[0] for rule in contract.get("ignore_imports", [])]
    upward = []
    for path in sorted((ROOT / "skrel").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if module in ignored:
            continue
        own = _layer_of(module, layers)
        for target, line, in_function in _imports(path, module):
            other = _layer_of(target, layers)
            if own is not None and other is not None and other < own:
                kind = "function-level" if in_function else "module-level"
                upward.append(f"{module}:{line} imports {target} ({kind})")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_every_subpackage_is_in_a_layer():
    layers = [[m.strip() for m in layer.split("|")] for layer in _contract()["layers"]]
    top = {p.stem if p.is_file() else p.name for p in (ROOT / "skrel").iterdir()
           if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    missing = [name for name in sorted(top) if _layer_of(f"skrel.{name}", layers) is None]
    assert not missing, f"skrel modules in no layer of pyproject.toml's contract: {missing}"


@pytest.mark.skipif(shutil.which("lint-imports") is None and not (Path(sys.executable).parent / "lint-imports").exists(),
                    reason="import-linter is not installed (pip install 'skrel[test]')")
def test_import_linter_contract_is_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    run = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)  # reads pyproject.toml
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
