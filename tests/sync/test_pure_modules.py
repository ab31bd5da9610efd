"""The pure sync cores import no async runtime (STYLE.md §1: pure cores are Trio-free).

``actors/sync/fsm.py`` and ``actors/sync/backoff.py`` are driven directly by
Hypothesis (STYLE.md §11, §19a); an import of trio, asyncio or grpclib would tie
them to an event loop. Parsing the source with ``ast`` catches every form of
import, including ``from trio import x`` and imports nested in functions or
under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# actors/planted.py (the simulator's planted-bug switch) is read by backoff.py.
PURE_MODULES = ("actors/sync/fsm.py", "actors/sync/backoff.py", "actors/planted.py")
FORBIDDEN = frozenset({"trio", "asyncio", "grpclib", "trio_asyncio", "trio_util"})


def imported_roots(source: str) -> set[str]:
    """The top-level package of every module ``source`` imports (relative imports as '.')."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            roots.add("." if node.level else (node.module or "").split(".")[0])
    return roots


@pytest.mark.parametrize("relpath", PURE_MODULES)
def test_pure_sync_modules_are_trio_free(relpath: str):
    """STYLE.md §1: pure policy lives in Trio-free modules; only adapters touch asyncio."""
    source = (ROOT / relpath).read_text(encoding="utf-8")
    bad = imported_roots(source) & FORBIDDEN
    assert not bad, f"{relpath} imports {sorted(bad)}: pure cores must be Trio-free (STYLE.md §1)"


@pytest.mark.parametrize("relpath", PURE_MODULES)
def test_pure_sync_modules_import_only_pure_project_modules(relpath: str):
    """A project import is only another pure core, so the rule cannot be dodged transitively."""
    tree = ast.parse((ROOT / relpath).read_text(encoding="utf-8"))
    project = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("actors")
    }
    allowed = {p.removesuffix(".py").replace("/", ".") for p in PURE_MODULES}
    assert project <= allowed, f"{relpath} imports non-pure project modules {project - allowed}"


def test_the_checker_sees_every_import_form():
    """The checker itself: plain, dotted, from- and nested imports are all found."""
    source = (
        "import trio\nimport asyncio.events\nfrom grpclib.client import Channel\n"
        "def f():\n    import trio_asyncio\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from trio import Nursery\n"
    )
    assert imported_roots(source) >= {"trio", "asyncio", "grpclib", "trio_asyncio", "typing"}
