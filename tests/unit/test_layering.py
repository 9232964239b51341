"""moulin's layering, checked on the import graph of its own source.

The graph is read from the syntax trees of every module under ``moulin/``: each
``import moulin...`` and ``from moulin... import ...`` counts, at module level or
inside a function or an ``if TYPE_CHECKING`` block (a lazy import is still a
dependency).  ``from package import name`` counts as an import of the module
``package.name`` when that module exists.  Imports by name at run time
(``importlib.import_module``: the stage modules named by ``moulin.STAGE_MODULES``,
the handovers named by ``moulin.STAGE_HANDOVERS``, the store's observers named by
``moulin.STORE_OBSERVERS``, the bronze gate's column treatment named by
``moulin.BRONZE_TREATMENTS``) are wiring, not imports, and are not in the graph.
A *component* is a top-level package or module of moulin (``moulin.delta``,
``moulin.sql``); the first three rules check the imports between components.

Rules:

* the storage layer (``moulin.delta``) imports neither ``moulin.privacy`` nor
  ``moulin.jobs``: privacy hears of the store's reads through
  :mod:`moulin.delta.observers`, and the phase timer is :mod:`moulin.phases`;
* no platform component imports a use case (``moulin.usecases`` and below).
  Every component is platform except the use cases themselves and
  ``moulin.cli``, the command line that dispatches to them (``moulin run
  <use case>``): storage and execution (``delta``, ``storage``, ``spark``,
  ``cluster``, ``platform``, ``jobs``, ``ops``), data flow (``ingest``,
  ``sources``, ``quality``, ``contracts``, ``expectations``), governance
  (``privacy``), models and output (``training``, ``reporting``) and the small
  modules beside them are shared by every use case, so none may know one;
* the components import each other without a cycle;
* the modules import each other without a cycle, inside a component too (a
  package's ``__init__`` is a module): what two modules share goes into a third
  that both import, and a module that must call one above it is handed what to
  call (a registry, a parameter) instead of importing it.

* an import of one of moulin's modules sits at the top of its file, unless the
  module's import runs a heavy third-party package (:data:`HEAVY_PACKAGES`:
  Spark, torch, pandas... kept out of DAG parsing and ``moulin --help``) or its
  import at the top would close a cycle at import time (a package's ``__init__``
  runs first): a file's top shows what it uses.

:data:`ALLOWED` lists the imports that still break one of the first three rules,
:data:`ALLOWED_IN_MODULE_CYCLES` those that still close a cycle of modules, each
with why it stays for now.  Both may only shrink: an allowed import that is gone,
or that no longer breaks its rule, fails the test until it is taken off the list.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import moulin

PACKAGE = Path(moulin.__file__).resolve().parent
USE_CASES = "moulin.usecases"
#: Components allowed to import use cases: the command line dispatches to them.
ENTRY_POINTS = frozenset({"moulin.cli"})
#: Components the storage layer must not import.
ABOVE_STORAGE = ("moulin.privacy", "moulin.jobs")

#: Imports (importing module, imported module) that break a rule today, and why they stay.
ALLOWED: dict[tuple[str, str], str] = {}

#: Imports (importing module, imported module) that close a cycle of modules today, and why they stay.
ALLOWED_IN_MODULE_CYCLES: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement's edge: ``importer`` (a module) imports ``imported`` at ``line``."""

    importer: str
    imported: str
    path: Path
    line: int

    @property
    def edge(self) -> tuple[str, str]:
        return self.importer, self.imported

    def where(self) -> str:
        return f"{self.path.relative_to(PACKAGE.parent)}:{self.line} imports {self.imported}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def component(module: str) -> str:
    """The top-level package or module of moulin that holds ``module``."""
    return ".".join(module.split(".")[:2])


@functools.cache
def sources() -> dict[str, tuple[Path, ast.Module]]:
    """Every module of moulin by name: its file and its syntax tree."""
    paths = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    return {
        name: (path, ast.parse(path.read_text(encoding="utf-8"), str(path))) for name, path in paths.items()
    }


def targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules (of moulin or not) that ``node``, an import in ``module``, imports: one per
    imported name (``from package import name`` imports ``package.name`` when that is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    path = sources()[module][0]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in sources() else source for a in node.names]


@functools.cache
def imports() -> tuple[Import, ...]:
    """Every import of one of moulin's modules by another, anywhere in the importing file."""
    found: list[Import] = []
    for name, (path, tree) in sources().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in targets(name, node):
                    if _within(target, "moulin") and target != "moulin":
                        found.append(Import(name, target, path, node.lineno))
    unique = dict.fromkeys(found)  # one per line and module, however many names it imports
    return tuple(sorted(unique, key=lambda i: (str(i.path), i.line, i.imported)))


def _between_components() -> list[Import]:
    return [i for i in imports() if component(i.importer) != component(i.imported)]


def _graph(edges: list[Import], node: Callable[[str], str] = component) -> dict[str, dict[str, list[Import]]]:
    """The import graph of ``edges`` between components (``node``: between modules, ``_itself``)."""
    graph: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for i in edges:
        if node(i.importer) != node(i.imported):
            graph[node(i.importer)][node(i.imported)].append(i)
    return graph


def _itself(module: str) -> str:
    return module


def _strongly_connected(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """The groups of two or more nodes (components, modules) that import each other,
    directly or not (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, {})):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _path(graph: dict[str, dict[str, list[Import]]], start: str, goal: str) -> list[str] | None:
    """A shortest chain of nodes from ``start`` to ``goal`` (breadth first)."""
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, {})):
            if nxt == goal:
                chain = [goal, node]
                while previous[chain[-1]] is not None:
                    chain.append(previous[chain[-1]])  # type: ignore[arg-type]
                return chain[::-1]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def _describe_cycle(graph: dict[str, dict[str, list[Import]]], members: list[str]) -> str:
    inside = {a: {b: i for b, i in out.items() if b in members} for a, out in graph.items() if a in members}
    chain = _path(inside, members[0], members[0]) or members
    steps = [f"  {a} -> {b}: {inside[a][b][0].where()}" for a, b in zip(chain, chain[1:], strict=False)]
    edges = [
        f"  {a} -> {b}: " + "; ".join(i.where() for i in found)
        for a, out in sorted(inside.items())
        for b, found in sorted(out.items())
    ]
    return (
        f"cycle among {', '.join(members)}, for instance:\n"
        + "\n".join(steps)
        + "\nevery import between them:\n"
        + "\n".join(edges)
    )


def _breaks_delta_rule(i: Import) -> bool:
    return _within(i.importer, "moulin.delta") and any(_within(i.imported, p) for p in ABOVE_STORAGE)


def _breaks_use_case_rule(i: Import) -> bool:
    source = component(i.importer)
    return source != USE_CASES and source not in ENTRY_POINTS and _within(i.imported, USE_CASES)


def _report(found: list[Import]) -> str:
    return "\n".join(f"  {i.where()}" for i in found)


def test_the_graph_sees_imports_at_module_level_and_inside_functions() -> None:
    edges = {i.edge for i in imports()}
    assert ("moulin.delta.store", "moulin.delta.log") in edges  # at module level
    assert ("moulin.jobs.server", "moulin.jobs.entry") in edges  # inside a method
    assert (
        "moulin.jobs.submit",
        "moulin.jobs.registry",
    ) in edges  # under TYPE_CHECKING (and inside functions)
    assert ("moulin.privacy.audit", "moulin.jobs.context") in edges  # inside a function


def test_delta_imports_neither_privacy_nor_jobs() -> None:
    found = [i for i in imports() if _breaks_delta_rule(i) and i.edge not in ALLOWED]
    assert not found, "moulin.delta imports a layer above it:\n" + _report(found)


def test_platform_components_import_no_use_case() -> None:
    found = [i for i in imports() if _breaks_use_case_rule(i) and i.edge not in ALLOWED]
    assert not found, "a platform component imports a use case:\n" + _report(found)


def test_no_cycle_among_components() -> None:
    graph = _graph([i for i in _between_components() if i.edge not in ALLOWED])
    cycles = _strongly_connected(graph)
    assert not cycles, "\n".join(_describe_cycle(graph, members) for members in cycles)


def test_no_cycle_among_modules() -> None:
    graph = _graph([i for i in imports() if i.edge not in ALLOWED_IN_MODULE_CYCLES], node=_itself)
    cycles = _strongly_connected(graph)
    assert not cycles, "\n".join(_describe_cycle(graph, members) for members in cycles)


def test_every_allowed_import_exists_and_still_breaks_a_rule() -> None:
    edges = {i.edge: i for i in imports()}
    gone = sorted(edge for edge in ALLOWED if edge not in edges)
    assert not gone, f"allowed imports that no longer exist (take them off ALLOWED): {gone}"
    graph = _graph(_between_components())
    harmless = sorted(
        edge
        for edge in ALLOWED
        if not _breaks_delta_rule(edges[edge])
        and not _breaks_use_case_rule(edges[edge])
        and _path(graph, component(edge[1]), component(edge[0])) is None
    )
    assert not harmless, f"allowed imports that break no rule any more (take them off ALLOWED): {harmless}"


def test_every_import_allowed_in_a_module_cycle_exists_and_still_closes_one() -> None:
    edges = {i.edge for i in imports()}
    gone = sorted(edge for edge in ALLOWED_IN_MODULE_CYCLES if edge not in edges)
    assert not gone, f"allowed imports that no longer exist (take them off ALLOWED_IN_MODULE_CYCLES): {gone}"
    graph = _graph(list(imports()), node=_itself)
    open_ = sorted(edge for edge in ALLOWED_IN_MODULE_CYCLES if _path(graph, edge[1], edge[0]) is None)
    assert not open_, (
        f"allowed imports that close no cycle any more (take them off ALLOWED_IN_MODULE_CYCLES): {open_}"
    )


def test_the_store_observers_are_declared_above_the_store() -> None:
    """The modules the store imports by name to observe its reads exist and lie outside it."""
    import importlib.util

    declared = moulin.declared_modules("STORE_OBSERVERS")
    assert declared
    for name in declared:
        assert importlib.util.find_spec(name) is not None, name
        assert not _within(name, "moulin.delta"), name


def test_the_stage_modules_and_handovers_are_declared_outside_the_job_package() -> None:
    """The modules the stage registry and the submitter import by name exist and lie outside
    ``moulin.jobs``; the registry finds the use cases' stages through them."""
    import importlib.util

    from moulin.jobs.registry import stages

    declared = moulin.declared_modules("STAGE_MODULES") + moulin.declared_modules("STAGE_HANDOVERS")
    assert moulin.declared_modules("STAGE_MODULES") and moulin.declared_modules("STAGE_HANDOVERS")
    for name in declared:
        assert importlib.util.find_spec(name) is not None, name
        assert not _within(name, "moulin.jobs"), name
    usecase_stages = {s.name for s in stages().values() if s.function.__module__.startswith(USE_CASES)}
    assert usecase_stages  # found through moulin.STAGE_MODULES, not by an import of the job package


def test_the_bronze_treatment_is_declared_above_the_sources() -> None:
    """The modules the bronze gate imports by name to pseudonymise exist and lie outside
    ``moulin.sources``, and one of them registers the column treatment."""
    import importlib.util

    from moulin.sources.treatments import registered_treatment

    declared = moulin.declared_modules("BRONZE_TREATMENTS")
    assert declared
    for name in declared:
        assert importlib.util.find_spec(name) is not None, name
        assert not _within(name, "moulin.sources"), name
    assert registered_treatment() is not None


# ----------------------------------------------------------------- imports at the top
#: Third-party packages a moulin module may keep out of its importers' start-up, and why.
#: An import of one of moulin's own modules inside a function is allowed only when that
#: module's import runs one of these (:func:`lazy_imports`): DAG files are parsed every
#: few seconds by Airflow and ``moulin --help`` must answer at once, so neither may pay
#: for Spark, a deep-learning stack or a plotting library they do not use.  Measured
#: with ``python -X importtime -c "import PACKAGE"`` on the platform's environment (the
#: training environment for the deep-learning packages): a package is heavy when its
#: import takes about 50 ms or more, or when it is missing from the platform environment.
#: Light enough to import anywhere (and imported by most commands anyway): yaml (15 ms),
#: skops, py4j, pyhive (under 15 ms).
HEAVY_PACKAGES: dict[str, str] = {
    "pyspark": "0.2-0.3 s, 290 modules; Spark runs in jobs, not where DAGs are parsed",
    "py4j": "Spark's gateway to the JVM, imported with pyspark",
    "torch": "3.3 s; only in the training environment",
    "torchvision": "only in the training environment",
    "transformers": "4.6 s; only in the training environment",
    "tokenizers": "only in the training environment",
    "safetensors": "only in the training environment",
    "petastorm": "only in the training environment",
    "great_expectations": "4-10 s, 2,500 modules",
    "airflow": "3.3 s, 1,300 modules; DAG files import it, the CLI and Spark jobs must not",
    "sklearn": "2.6-4 s, 1,400 modules",
    "pandas": "0.4-0.8 s, 540 modules",
    "pyarrow": "0.3 s, 150 modules",
    "deltalake": "60-100 ms and Arrow's native thread pools",
    "numpy": "0.1-0.2 s, 120 modules",
    "scipy": "0.15-0.3 s",
    "matplotlib": "0.3-0.55 s, 250 modules",
    "polars": "0.4 s, 320 modules",
    "duckdb": "0.25-0.45 s",
    "hdfs": "0.27 s, 250 modules (requests)",
    "requests": "0.3 s, 220 modules",
    "requests_kerberos": "0.7 s, 390 modules",
    "sqlalchemy": "0.6 s, 230 modules",
    "psycopg2": "85 ms and libpq",
}


def _type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_run(tree: ast.AST, in_function: bool) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """The import statements of ``tree`` that run at some time (none under ``if TYPE_CHECKING``),
    each with whether it sits inside a function (else it runs when the module is imported)."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.Import | ast.ImportFrom):
            found.append((child, in_function))
        elif isinstance(child, ast.If) and _type_checking(child):
            for stmt in child.orelse:
                found.extend(_imports_run(ast.Module(body=[stmt], type_ignores=[]), in_function))
        else:
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            found.extend(_imports_run(child, inside))
    return found


def _packages_of(module: str) -> list[str]:
    """The packages whose ``__init__`` runs before ``module``'s own code (``moulin`` first)."""
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts))]


@dataclass
class ImportTime:
    """What importing each of moulin's modules runs: ``edges`` maps a module to the modules of
    moulin its top level imports (with their packages), ``packages`` to the heavy packages
    (:data:`HEAVY_PACKAGES`) its top level imports itself."""

    edges: dict[str, set[str]]
    packages: dict[str, set[str]]

    def add(self, importer: str, imported: str) -> None:
        """Count an import of ``imported`` at the top of ``importer``."""
        own = {importer, *_packages_of(importer)}
        self.edges[importer].update(m for m in (*_packages_of(imported), imported) if m not in own)

    def _chain(self, starts: list[str], goal: Callable[[str], bool]) -> list[str] | None:
        previous: dict[str, str | None] = dict.fromkeys(starts)
        queue = deque(starts)
        while queue:
            node = queue.popleft()
            if goal(node):
                chain = [node]
                while previous[chain[-1]] is not None:
                    chain.append(previous[chain[-1]])  # type: ignore[arg-type]
                return chain[::-1]
            for nxt in sorted(self.edges.get(node, ())):
                if nxt not in previous:
                    previous[nxt] = node
                    queue.append(nxt)
        return None

    def heavy(self, module: str) -> str | None:
        """Why importing ``module`` is heavy (``a -> b imports pyspark``), or None."""
        chain = self._chain([*_packages_of(module), module], lambda m: bool(self.packages.get(m)))
        if chain is None:
            return None
        return f"{' -> '.join(chain)} imports {', '.join(sorted(self.packages[chain[-1]]))}"

    def cycle(self, importer: str, imported: str) -> str | None:
        """The cycle an import of ``imported`` at the top of ``importer`` would close
        (``imported -> ... -> importer``), or None."""
        own = {importer, *_packages_of(importer)}
        starts = [m for m in (*_packages_of(imported), imported) if m not in own]
        chain = self._chain(starts, lambda m: m == importer)
        return None if chain is None else " -> ".join([importer, *chain])


def import_time() -> ImportTime:
    """The :class:`ImportTime` of moulin's modules as they are now."""
    graph = ImportTime(defaultdict(set), defaultdict(set))
    for name, (_, tree) in sources().items():
        for node, in_function in _imports_run(tree, in_function=False):
            if in_function:
                continue
            for target in targets(name, node):
                if _within(target, "moulin"):
                    graph.add(name, target)
                elif target.split(".")[0] in HEAVY_PACKAGES:
                    graph.packages[name].add(target.split(".")[0])
    return graph


@dataclass(frozen=True)
class LazyImport:
    """An import of one of moulin's modules inside a function: ``statement`` (the whole import
    statement) in ``importer`` imports ``imported``; ``reason`` says why it may stay there
    (``heavy: ...``, ``cycle: ...``), or is empty when it belongs at the top of the file."""

    importer: str
    imported: str
    path: Path
    statement: ast.Import | ast.ImportFrom
    reason: str

    def where(self) -> str:
        return f"{self.path.relative_to(PACKAGE.parent)}:{self.statement.lineno} imports {self.imported}"


def lazy_imports(graph: ImportTime | None = None) -> list[LazyImport]:
    """Every import of one of moulin's modules (``moulin`` itself too) inside a function, with
    why it may stay there: the module's import runs a heavy package (:data:`HEAVY_PACKAGES`),
    or its import at the top of the file would close a cycle of imports at import time
    (through the packages' ``__init__`` too).  ``graph``: :func:`import_time` by default."""
    graph = graph or import_time()
    found: list[LazyImport] = []
    for name, (path, tree) in sources().items():
        for node, in_function in _imports_run(tree, in_function=False):
            if not in_function:
                continue
            for target in dict.fromkeys(targets(name, node)):
                if not _within(target, "moulin"):
                    continue
                heavy = graph.heavy(target)
                cycle = None if heavy else graph.cycle(name, target)
                reason = f"heavy: {heavy}" if heavy else f"cycle: {cycle}" if cycle else ""
                found.append(LazyImport(name, target, path, node, reason))
    return found


def test_the_import_time_graph_sees_heavy_modules_and_cycles() -> None:
    graph = import_time()
    assert "pyspark" in (graph.heavy("moulin.delta.log") or "")  # imports pyspark at its top
    assert "pyspark" in (graph.heavy("moulin.delta.errors") or "")  # through moulin.delta's __init__
    assert graph.heavy("moulin.settings") is None
    # a package's __init__ runs before its modules: b imported at the top of a closes p -> q -> a
    made_up = ImportTime(defaultdict(set, {"p": {"q"}, "q": {"a"}}), defaultdict(set, {"q": {"torch"}}))
    assert made_up.cycle("a", "p.b") == "a -> p -> q -> a"
    assert made_up.heavy("p.b") == "p -> q imports torch"
    made_up.add("a", "p.b")
    assert made_up.edges["a"] == {"p", "p.b"}


def test_moulin_modules_are_imported_at_the_top_of_the_file_unless_heavy_or_circular() -> None:
    """A file's top shows what it uses: an import of one of moulin's modules sits inside a
    function only to keep a heavy package (:data:`HEAVY_PACKAGES`) out of its importers'
    start-up, or because it would close a cycle of imports at the top."""
    found = [i for i in lazy_imports() if not i.reason]
    assert not found, "imports of moulin's modules inside functions that belong at the top of the file:\n" + (
        "\n".join(
            f"  {i.where()} inside a function, and that module runs no heavy package and closes no "
            f"cycle: move `{ast.unparse(i.statement)}` to the top of {i.path.relative_to(PACKAGE.parent)}"
            for i in found
        )
    )
