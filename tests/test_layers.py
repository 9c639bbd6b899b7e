"""The import graph of `motet/` against its layers (docs/architecture.md, "Layers").

Every `import` and `from ... import` in the package counts, at module level, inside functions
(a lazy import is still an arrow) and under `TYPE_CHECKING` (a type the lower layer needs
belongs in the lower layer). A module may import from its own layer or any layer below; an
import from a layer above fails this test, as does a new import cycle between two packages
(within a layer too: two packages that need each other are one package or share a lower one).

`KNOWN_UPWARD` and `KNOWN_CYCLES` list the arrows that were there when the layers were written
down, each with the change that removes it. They may only shrink: an entry that no longer
matches an import fails the test too, so whoever removes the arrow removes the entry.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import motet

PACKAGE = Path(motet.__file__).parent

# Bottom up. A module belongs to the first unit (a module or a package) that names it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core records",
        (
            "motet._envelope",
            "motet._errors",
            "motet._clock",
            "motet._logging",
            "motet._traceback",
            "motet._redact",
            "motet._public",  # every package's __init__ names its public module with it
            # core modules that issue 12's other items add (validators, backoff, the
            # converter, the state-change records), placed here ahead of their merge
            "motet._validators",
            "motet._backoff",
            "motet._convert",
            "motet._state_writes",
            "motet._when",  # delays, instants and durations as users write them
            "motet._status",
            "motet._malloc",  # glibc's allocator: arenas, handing free pages back
            "motet._gc",  # the garbage collector tuned for a served process
        ),
    ),
    ("steps", ("motet.steps",)),
    (
        "backends, state and project config",
        ("motet.backends", "motet.state", "motet.project", "motet.streams"),
    ),
    ("actors and supervision", ("motet.actors", "motet.supervision", "motet._context")),
    # The runtime runs a pure plan; `_observer` is the one seam observers see it through.
    ("runtime", ("motet._runtime", "motet._plan", "motet._observer")),
    ("gateway and observe", ("motet.gateway", "motet.observe")),
    # The console (operator API, auth, static files) and the parts `motet start` serves.
    ("console", ("motet.console",)),
    # `_open`: open_runtime, assembled as `motet start` assembles it.
    ("CLI, testing and the package's front door", ("motet.cli", "motet.testing", "motet")),
)

# (importer, imported) module pairs that point up a layer, and who removes them.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}

# Package pairs importing each other (a cycle), and who removes them.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def module_name(file: Path) -> tuple[str, bool]:
    parts = list(file.relative_to(PACKAGE.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def imports(file: Path) -> Iterator[tuple[str, int]]:
    """Every motet module `file` imports (`from .x import y` counts `.x.y` when that is a
    module, else `.x`), with its line."""
    name, is_package = module_name(file)
    package = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in MODULES else target), node.lineno


MODULES = {module_name(f)[0] for f in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None  # (length of the matching unit, layer)
    for index, (_, units) in enumerate(LAYERS):
        for unit in units:
            inside = module == unit or module.startswith(unit + ".")
            if inside and (best is None or len(unit) > best[0]):
                best = (len(unit), index)
    assert best is not None, f"{module} is in no layer; add it to LAYERS"
    return best[1]


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def graph() -> list[tuple[str, str, int]]:
    edges = []
    for file in sorted(PACKAGE.rglob("*.py")):
        importer, _ = module_name(file)
        for imported, line in imports(file):
            if imported.startswith("motet.") or imported == "motet":
                edges.append((importer, imported, line))
    return edges


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_from_a_layer_above_it() -> None:
    upward = {}
    for importer, imported, line in graph():
        if layer_of(imported) > layer_of(importer):
            upward.setdefault((importer, imported), line)
    new = {pair: line for pair, line in upward.items() if pair not in KNOWN_UPWARD}
    assert new == {}, "\n".join(
        f"{a} (line {line}, layer {LAYERS[layer_of(a)][0]!r}) imports {b} "
        f"(layer {LAYERS[layer_of(b)][0]!r})"
        for (a, b), line in sorted(new.items())
    )


def test_the_known_upward_imports_still_exist() -> None:
    """The allow-list shrinks with the code: a removed arrow must leave the list too."""
    edges = {(a, b) for a, b, _ in graph()}
    gone = sorted(pair for pair in KNOWN_UPWARD if pair not in edges)
    assert gone == [], f"remove from KNOWN_UPWARD: {gone}"


def test_no_import_cycles_between_packages() -> None:
    edges = {(package_of(a), package_of(b)) for a, b, _ in graph() if (a, b) not in KNOWN_UPWARD}
    cycles = {
        frozenset({a, b})
        for a, b in edges
        if a != b and (b, a) in edges and "motet" not in (a, b) and a.startswith("motet.")
    }
    assert cycles - set(KNOWN_CYCLES) == set()
    assert set(KNOWN_CYCLES) - cycles == set(), "remove the gone cycle from KNOWN_CYCLES"


def test_the_walk_sees_lazy_and_type_checking_imports() -> None:
    """Without these the checks above would miss the arrows that are easiest to add."""
    found = {name for name, _ in imports(PACKAGE / "steps" / "_triggers.py")}
    assert {"motet.steps._cron", "motet.steps._fields"} <= found  # `from . import _fields as f`
    front = {name for name, _ in imports(PACKAGE / "_open.py")}
    # a type-only import and one inside a function
    assert {"motet.gateway", "motet.console._part"} <= front


def test_the_package_cites_only_documents_in_the_repository() -> None:
    """Docstrings and comments point at docs/architecture.md, README.md, SECURITY.md; never at
    a design note or file that a reader of the repository cannot open."""
    root = PACKAGE.parent
    cited = re.compile(r"[\w./-]+\.md\b")
    missing = sorted(
        f"{file.relative_to(root)}: {name}"
        for file in PACKAGE.rglob("*.py")
        for name in cited.findall(file.read_text())
        if not (root / name).is_file()
    )
    assert missing == []
