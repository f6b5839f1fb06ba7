"""The workflow linter's analysis (``wftest.lint`` is its public face).

It parses Python source with :mod:`ast` (nothing is imported or run), finds the orchestrator functions,
and walks the code each one runs, looking for the constructs that make a replay differ from the first
run. The rules and their codes are in :data:`RULES`; docs/lint.md describes them.

Which functions are orchestrators:

- functions registered in the linted files: ``add_orchestrator(fn)``, ``add_named_orchestrator(name, fn)``,
  ``schedule_new_orchestration(fn)``, ``call_sub_orchestrator(fn)``, ``on_sub_orchestrator(fn)``, a
  tester's ``run(fn)``/``start(fn)``, Dapr's ``register_workflow(fn)``/``schedule_new_workflow(fn)``/
  ``call_child_workflow(fn)``, and functions decorated ``@...orchestrator``/``@...workflow``;
- functions whose context parameter (the first, after ``self``) is annotated ``OrchestrationContext``
  (or Dapr's ``DaprWorkflowContext``);
- generators and ``async def`` functions that call ``call_activity``, ``call_sub_orchestrator``,
  ``create_timer``, ``wait_for_external_event`` or ``continue_as_new`` on their context parameter.

What an orchestrator "runs": its own body, lambdas in it, the nested functions it refers to, and the
functions of the same file that it (or those) refer to, transitively. References in the arguments of a
context method (``ctx.call_activity(charge)``, ``ctx.side_effect(lambda: ...)``) are not followed: that
code runs outside replay.
"""

from __future__ import annotations

import ast
import io
import json
import re
import sys
import tokenize
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    """One lint rule: a stable code, a short name, what it detects and how to fix it."""

    code: str
    name: str
    summary: str
    hint: str


_RULE_LIST = [
    Rule("WF101", "wall-clock", "reads the wall clock",
         "use ctx.current_utc_datetime, the orchestration time: the same on replay"),
    Rule("WF102", "random", "draws random numbers",
         "use ctx.random(), seeded from the execution, or ctx.new_uuid()"),
    Rule("WF103", "uuid", "makes a uuid that differs on replay",
         "use ctx.new_uuid(): the same uuid on replay"),
    Rule("WF104", "sleep", "sleeps",
         "wait on a durable timer: yield ctx.create_timer(timedelta(...)), or await it in an async orchestrator"),
    Rule("WF105", "threads", "starts threads or processes",
         "run the work in activities and fan out with when_all"),
    Rule("WF106", "io", "does I/O",
         "do it in an activity, or record a one-off value with ctx.side_effect"),
    Rule("WF107", "set-order", "iterates over a set",
         "iterate over sorted(...): a set's order depends on hashing and can differ between processes"),
    Rule("WF108", "asyncio", "uses an event-loop primitive",
         "use when_all / when_any / ctx.create_timer: wftest drives the orchestrator, not an event loop"),
    Rule("WF109", "foreign-await", "awaits something that is not a wftest task",
         "await only context tasks such as ctx.call_activity(...), when_all / when_any, or helpers that do; "
         "do other async work in an activity"),
    Rule("WF110", "global-state", "uses global mutable state",
         "keep state in local variables or in the input, and carry it across continue_as_new"),
    Rule("WF111", "process-dependent", "uses a value that differs between processes",
         "derive it from the input or ctx.instance_id; hash() of str changes with PYTHONHASHSEED"),
]

#: every rule, by code
RULES: dict[str, Rule] = {rule.code: rule for rule in _RULE_LIST}


@dataclass(frozen=True, order=True)
class Finding:
    """One non-deterministic construct reached by an orchestrator.

    ``line`` and ``column`` count from 1. ``orchestrator`` names the orchestrator that reaches the code
    (the code may be in a helper it calls).
    """

    file: str
    line: int
    column: int
    code: str
    message: str
    hint: str
    orchestrator: str = field(default="", compare=False)

    def format(self) -> str:
        """``path:line:col: CODE message (hint)``, the text output of ``wftest lint``."""
        return f"{self.file}:{self.line}:{self.column}: {self.code} {self.message} ({self.hint})"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (the ``--format json`` output)."""
        return {"file": self.file, "line": self.line, "column": self.column, "code": self.code,
                "message": self.message, "hint": self.hint, "orchestrator": self.orchestrator}


# -- call tables (fully qualified names, after resolving import aliases) --------------------------------

_WALL_CLOCK = {
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today", "datetime.date.today",
    "time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns", "time.perf_counter",
    "time.perf_counter_ns", "time.process_time", "time.process_time_ns", "time.thread_time",
    "pendulum.now", "pendulum.today", "arrow.now", "arrow.utcnow",
}
# these read the clock only when called without arguments
_WALL_CLOCK_NO_ARGS = {"time.localtime", "time.gmtime", "time.ctime", "time.asctime", "time.strftime"}
_RANDOM_EXACT = {"os.urandom", "os.getrandom", "random.SystemRandom"}
_RANDOM_PREFIXES = ("random.", "secrets.", "numpy.random.")
_UUID = {"uuid.uuid1", "uuid.uuid4"}
_SLEEP = {"time.sleep", "asyncio.sleep", "trio.sleep", "anyio.sleep", "gevent.sleep"}
_THREAD_EXACT = {"os.fork", "os.forkpty", "os.system", "os.popen", "os.posix_spawn", "os.posix_spawnp"}
_THREAD_PREFIXES = ("threading.", "_thread.", "concurrent.", "multiprocessing.", "subprocess.", "os.spawn",
                    "os.exec")
_IO_EXACT = {
    "open", "input", "builtins.open", "io.open", "io.open_code", "os.open", "os.read", "os.write",
    "os.listdir", "os.scandir", "os.walk", "os.stat", "os.lstat", "os.remove", "os.unlink", "os.rename",
    "os.replace", "os.mkdir", "os.makedirs", "os.rmdir", "os.getcwd", "os.getenv", "os.putenv",
    "os.path.exists", "os.path.isfile", "os.path.isdir", "os.path.islink", "os.path.getsize",
    "os.path.getmtime", "os.path.getatime", "os.path.getctime", "os.path.realpath",
    "sqlite3.connect", "pathlib.Path.cwd", "pathlib.Path.home", "psycopg.connect", "psycopg2.connect",
    "pymongo.MongoClient", "redis.Redis",
}
_IO_PREFIXES = ("requests.", "httpx.", "urllib.request.", "urllib3.", "aiohttp.", "socket.", "http.client.",
                "smtplib.", "ftplib.", "shutil.", "glob.", "tempfile.", "boto3.", "webbrowser.")
_IO_ATTRIBUTES = {"os.environ", "os.environb", "sys.stdin"}
_PATH_TYPES = {"pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath"}
_PATH_IO_METHODS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "exists", "is_file", "is_dir",
                    "iterdir", "glob", "rglob", "stat", "unlink", "mkdir", "rmdir", "touch", "rename", "replace",
                    "resolve", "samefile"}
_EVENT_LOOP_PREFIXES = ("asyncio.", "trio.", "anyio.")
_PROCESS_DEPENDENT = {"hash", "id", "os.getpid", "os.getppid", "platform.node"}

_BUILTINS = {"open", "input", "hash", "id", "set", "frozenset", "list", "tuple", "enumerate", "iter", "zip",
             "reversed", "next", "sorted"}

# context methods that only orchestrators have (signature detection)
_ORCHESTRATION_METHODS = {"call_activity", "call_sub_orchestrator", "create_timer", "wait_for_external_event",
                          "continue_as_new", "call_child_workflow"}
# registration calls: method name -> index of the positional argument that is the orchestrator
_REGISTRATIONS = {"add_orchestrator": 0, "add_named_orchestrator": 1, "schedule_new_orchestration": 0,
                  "call_sub_orchestrator": 0, "on_sub_orchestrator": 0, "register_workflow": 0,
                  "schedule_new_workflow": 0, "call_child_workflow": 0}
_TESTER_RUNS = {"run": 0, "start": 0}  # only on receivers whose name contains "tester"
_DECORATORS = {"orchestrator", "workflow", "orchestration"}
_ORCHESTRATOR_CONTEXTS = ("OrchestrationContext", "DaprWorkflowContext")
_ACTIVITY_CONTEXTS = ("ActivityContext", "WorkflowActivityContext")

_MUTATORS = {"append", "extend", "insert", "pop", "popitem", "remove", "clear", "update", "setdefault", "add",
             "discard", "sort", "reverse", "appendleft", "popleft", "extendleft", "rotate", "difference_update",
             "intersection_update", "symmetric_difference_update", "__setitem__", "__delitem__"}
_MUTABLE_FACTORIES = {"list", "dict", "set", "bytearray", "collections.defaultdict", "collections.OrderedDict",
                      "collections.Counter", "collections.deque", "collections.ChainMap"}
_SET_TYPES = {"set", "frozenset", "Set", "FrozenSet", "AbstractSet", "MutableSet"}
_SET_RETURNING_METHODS = {"union", "intersection", "difference", "symmetric_difference"}
_SET_OPERATORS = (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)
_ITERATING_CALLS = {"list", "tuple", "enumerate", "iter", "zip", "reversed", "next"}

_IGNORE = re.compile(r"#\s*wftest:\s*ignore\b(?:\[([^\]]*)\])?", re.IGNORECASE)
_ALL = "*"

_Function = ast.FunctionDef | ast.AsyncFunctionDef
_A_SET = ast.Set(elts=[])  # stands for a value declared (annotated) as a set


# -- per-module facts ---------------------------------------------------------------------------------


def _suppressions(source: str) -> dict[int, set[str]]:
    """Line -> codes suppressed by a ``# wftest: ignore[...]`` comment on it (``*``: every code)."""
    found: dict[int, set[str]] = {}
    if not _IGNORE.search(source):
        return found
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):  # pragma: no cover - the source parsed with ast already
        return found
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = _IGNORE.search(token.string)
        if match is None:
            continue
        codes = {c.strip().upper() for c in (match.group(1) or "").split(",") if c.strip()}
        found.setdefault(token.start[0], set()).update(codes or {_ALL})
    return found


def _imports(nodes: list[ast.AST]) -> dict[str, str]:
    """Local name -> the fully qualified name it refers to (``dt`` -> ``datetime.datetime``)."""
    names: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _is_generator(fn: ast.AST) -> bool:
    return any(isinstance(n, ast.Yield | ast.YieldFrom) for n in _own_nodes(fn))


def _own_nodes(fn: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's body, not descending into nested functions, lambdas or classes."""
    stack: list[ast.AST] = list(getattr(fn, "body", []))
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
                stack.append(child)


def _root_name(node: ast.AST) -> str | None:
    """``a`` for ``a``, ``a.b``, ``a[k].c``; None for anything else."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


@dataclass
class _Def:
    node: _Function
    qualname: str
    in_class: bool
    parent: _Def | None

    @property
    def context_index(self) -> int:
        args = self.node.args.posonlyargs + self.node.args.args
        skip = self.in_class and bool(args) and args[0].arg in ("self", "cls") and not any(
            isinstance(d, ast.Name) and d.id == "staticmethod" for d in self.node.decorator_list)
        return 1 if skip else 0

    def param(self, index: int) -> ast.arg | None:
        args = self.node.args.posonlyargs + self.node.args.args
        index += self.context_index
        return args[index] if index < len(args) else None


class _Module:
    """What the linter knows about one parsed file."""

    def __init__(self, tree: ast.Module, filename: str, source: str) -> None:
        self.tree = tree
        self.filename = filename
        self.nodes = list(ast.walk(tree))
        self.imports = _imports(self.nodes)
        self.suppressed = _suppressions(source)
        self.defs: list[_Def] = []
        self.module_functions: dict[str, list[_Def]] = {}
        self._collect(tree, "", False, None)
        self.by_node: dict[ast.AST, _Def] = {d.node: d for d in self.defs}
        self.mutable_globals = self._mutable_globals()
        self.module_names = self._module_names()
        self.registered, self.registered_elsewhere = self._registered_names()
        self.activities = self._activity_names()

    def _collect(self, node: ast.AST, prefix: str, in_class: bool, parent: _Def | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                d = _Def(child, prefix + child.name, in_class, parent)
                self.defs.append(d)
                if node is self.tree:
                    self.module_functions.setdefault(child.name, []).append(d)
                self._collect(child, f"{d.qualname}.<locals>.", False, d)
            elif isinstance(child, ast.ClassDef):
                self._collect(child, f"{prefix}{child.name}.", True, parent)
            else:
                self._collect(child, prefix, in_class, parent)

    # -- names -------------------------------------------------------------------------------------

    def resolve(self, node: ast.AST) -> str | None:
        """The fully qualified name an expression refers to (``t.time`` -> ``time.time``), or None."""
        if isinstance(node, ast.Name):
            if node.id in self.imports:
                return self.imports[node.id]
            if node.id in _BUILTINS and node.id not in self.module_functions:
                return node.id
            return None
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def _mutable_globals(self) -> set[str]:
        names: set[str] = set()
        for stmt in self.tree.body:
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            if isinstance(stmt, ast.Assign):
                targets, value = stmt.targets, stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                targets, value = [stmt.target], stmt.value
            if value is None or not self._is_mutable(value):
                continue
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        return names

    def _module_names(self) -> set[str]:
        names: set[str] = set()
        for stmt in self.tree.body:
            if isinstance(stmt, ast.Assign):
                names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                names.add(stmt.target.id)
        return names

    def _is_mutable(self, value: ast.expr) -> bool:
        if isinstance(value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp):
            return True
        if isinstance(value, ast.Call):
            name = self.resolve(value.func)
            if name is None and isinstance(value.func, ast.Name) and value.func.id in ("list", "dict", "set",
                                                                                       "bytearray"):
                name = value.func.id
            return name in _MUTABLE_FACTORIES
        return False

    def _registered_names(self) -> tuple[set[str], set[str]]:
        """Orchestrators registered in this file: (names defined here, qualified names imported from elsewhere)."""
        local: set[str] = set()
        foreign: set[str] = set()
        activity_testers = {
            t.id for node in self.nodes if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func).endswith("ActivityTester") for t in node.targets if isinstance(t, ast.Name)
        }
        for node in self.nodes:
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method = node.func.attr
            index = _REGISTRATIONS.get(method)
            receiver = ast.unparse(node.func.value)
            if (index is None and method in _TESTER_RUNS and "tester" in receiver.lower()
                    and "activity" not in receiver.lower() and receiver not in activity_testers):
                index = _TESTER_RUNS[method]
            if index is None:
                continue
            ref: ast.expr | None = node.args[index] if len(node.args) > index else None
            for kw in node.keywords:
                if kw.arg in ("orchestrator", "fn", "workflow"):
                    ref = kw.value
            qualified = self.resolve(ref) if ref is not None else None
            if qualified is not None and "." in qualified:
                foreign.add(qualified)
            elif isinstance(ref, ast.Name):
                local.add(ref.id)
            elif isinstance(ref, ast.Attribute):
                local.add(ref.attr)  # a method: self.wf, obj.wf
        return local, foreign

    def import_names(self, path: Path) -> set[str]:
        """The dotted names this file may be imported as (``a/b/c.py``: ``c``, ``b.c``, ``a.b.c``)."""
        parts = list(path.with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        parts = [p for p in parts if p not in ("", ".", "..", "/")]
        return {".".join(parts[i:]) for i in range(len(parts))}

    def _activity_names(self) -> set[str]:
        """Functions used as activities in this file (never followed as helpers of an orchestrator)."""
        names = {d.node.name for d in self.defs if self.context_annotation(d.param(0)) == "activity"}
        for node in self.nodes:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                index = {"call_activity": 0, "add_activity": 0, "add_named_activity": 1, "on_activity": 0,
                         "register_activity": 0}.get(node.func.attr)
                if index is not None and len(node.args) > index:
                    ref = node.args[index]
                    if isinstance(ref, ast.Name):
                        names.add(ref.id)
                    elif isinstance(ref, ast.Attribute):
                        names.add(ref.attr)
        return names

    # -- orchestrators -----------------------------------------------------------------------------

    def context_annotation(self, arg: ast.arg | None) -> str | None:
        if arg is None or arg.annotation is None:
            return None
        ann = arg.annotation
        text = ann.value if isinstance(ann, ast.Constant) and isinstance(ann.value, str) else ast.unparse(ann)
        last = text.rsplit(".", 1)[-1]
        if last in _ORCHESTRATOR_CONTEXTS:
            return "orchestrator"
        if last in _ACTIVITY_CONTEXTS:
            return "activity"
        return None

    def orchestrators(self, registered: set[str]) -> list[_Def]:
        found = []
        for d in self.defs:
            if self._is_orchestrator(d, registered):
                found.append(d)
        return found

    def _is_orchestrator(self, d: _Def, registered: set[str]) -> bool:
        kind = self.context_annotation(d.param(0))
        if kind is not None:
            return kind == "orchestrator"
        if d.node.name in registered or any(self._is_orchestrator_decorator(x) for x in d.node.decorator_list):
            return True
        ctx = d.param(0)
        if ctx is None or not (isinstance(d.node, ast.AsyncFunctionDef) or _is_generator(d.node)):
            return False
        for node in _own_nodes(d.node):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in _ORCHESTRATION_METHODS
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == ctx.arg):
                return True
        return False

    @staticmethod
    def _is_orchestrator_decorator(node: ast.expr) -> bool:
        if isinstance(node, ast.Call):
            node = node.func
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
        return name in _DECORATORS

# -- the walk over what an orchestrator runs ----------------------------------------------------------


@dataclass
class _Scope:
    """One function being checked: its context names and what is known about its local names."""

    fn: _Def
    orchestrator: _Def
    ctx_names: set[str]
    is_async: bool
    via: str  # "" for the orchestrator itself, else "helper 'name'"
    statement: ast.stmt | None = None  # the innermost simple statement being visited
    set_names: set[str] = field(default_factory=set)
    local_names: set[str] = field(default_factory=set)
    global_names: set[str] = field(default_factory=set)


class _Checker:
    def __init__(self, module: _Module, orchestrators: list[_Def]) -> None:
        self.module = module
        self.orchestrators = {d.node for d in orchestrators}
        self.findings: dict[tuple[int, int, str], Finding] = {}
        self.checked: set[tuple[ast.AST, frozenset[str]]] = set()

    # -- entry points ------------------------------------------------------------------------------

    def check_orchestrator(self, d: _Def) -> None:
        ctx = d.param(0)
        names = self._inherited_ctx(d) | ({ctx.arg} if ctx is not None else set())
        self._check_function(d, d, names, "")

    def _inherited_ctx(self, d: _Def) -> set[str]:
        names: set[str] = set()
        parent = d.parent
        while parent is not None:
            p = parent.param(0)
            if p is not None and (self.module.context_annotation(p) == "orchestrator" or p.arg in ("ctx", "context")):
                names.add(p.arg)
            parent = parent.parent
        return names

    def _check_function(self, d: _Def, orchestrator: _Def, ctx_names: set[str], via: str) -> None:
        key = (d.node, frozenset(ctx_names))
        if key in self.checked:
            return
        self.checked.add(key)
        scope = _Scope(d, orchestrator, set(ctx_names), isinstance(d.node, ast.AsyncFunctionDef), via)
        self._prepare(scope, d.node)
        for stmt in d.node.body:
            self._visit(stmt, scope)
        self._follow_references(scope)

    # -- local facts ---------------------------------------------------------------------------------

    def _prepare(self, scope: _Scope, fn: _Function) -> None:
        # every value bound to each local name (None: not a set, whatever it is; _A_SET: declared a set)
        bindings: dict[str, list[ast.expr | None]] = {}

        def bind(name: str, value: ast.expr | None) -> None:
            scope.local_names.add(name)
            bindings.setdefault(name, []).append(value)

        args = fn.args
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if a is not None:
                declared = a.annotation is not None and self._is_set_annotation(a.annotation)
                bind(a.arg, _A_SET if declared else None)
        for node in _own_nodes(fn):
            if isinstance(node, ast.Global):
                scope.global_names.update(node.names)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        bind(target.id, node.value)
                    elif isinstance(target, ast.Tuple | ast.List | ast.Starred):
                        self._bind_all(target, bind)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                bind(node.target.id, _A_SET if self._is_set_annotation(node.annotation) else node.value)
            elif isinstance(node, ast.For | ast.AsyncFor | ast.With | ast.AsyncWith | ast.comprehension):
                for bound in self._targets(node):
                    self._bind_all(bound, bind)
            elif isinstance(node, ast.NamedExpr):
                bind(node.target.id, node.value)
        scope.local_names -= scope.global_names
        # names whose every binding is a set; iterated so that ``b = a | c`` sees what ``a`` is
        while True:
            sets = {name for name, values in bindings.items()
                    if all(v is not None and self._is_set(v, scope) for v in values)}
            if sets == scope.set_names:
                break
            scope.set_names = sets

    @staticmethod
    def _bind_all(target: ast.AST, bind: Callable[[str, ast.expr | None], None]) -> None:
        for name in ast.walk(target):
            if isinstance(name, ast.Name) and isinstance(name.ctx, ast.Store):
                bind(name.id, None)

    @staticmethod
    def _targets(node: ast.AST) -> list[ast.AST]:
        if isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            return [node.target]
        if isinstance(node, ast.With | ast.AsyncWith):
            return [i.optional_vars for i in node.items if i.optional_vars is not None]
        return []

    @staticmethod
    def _is_set_annotation(ann: ast.expr) -> bool:
        if isinstance(ann, ast.Subscript):
            ann = ann.value
        text = ann.value if isinstance(ann, ast.Constant) and isinstance(ann.value, str) else ast.unparse(ann)
        return text.split("[", 1)[0].rsplit(".", 1)[-1] in _SET_TYPES

    def _is_set(self, node: ast.AST, scope: _Scope) -> bool:
        if isinstance(node, ast.Set | ast.SetComp):
            return True
        if isinstance(node, ast.Name):
            return node.id in scope.set_names
        if isinstance(node, ast.Call):
            func = node.func
            if self._resolve(func, scope) in ("set", "frozenset"):
                return True
            return (isinstance(func, ast.Attribute) and func.attr in _SET_RETURNING_METHODS | {"copy"}
                    and self._is_set(func.value, scope))
        if isinstance(node, ast.BinOp) and isinstance(node.op, _SET_OPERATORS):
            return any(self._is_set(side, scope) or self._is_keys_view(side) for side in (node.left, node.right))
        return False

    @staticmethod
    def _is_keys_view(node: ast.AST) -> bool:
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("keys", "items") and not node.args)

    def _resolve(self, node: ast.AST, scope: _Scope) -> str | None:
        """Like ``_Module.resolve``, but a name bound in the function (``random = ctx.random()``) is local."""
        root = _root_name(node)
        if root is not None and root in scope.local_names:
            return None
        return self.module.resolve(node)

    def _is_ctx_call(self, node: ast.Call, scope: _Scope) -> bool:
        func = node.func
        return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in scope.ctx_names

    # -- the visit ---------------------------------------------------------------------------------

    def _visit(self, node: ast.AST, scope: _Scope) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return  # nested definitions: checked only if referenced (_follow_references)
        if isinstance(node, ast.stmt) and not hasattr(node, "body"):
            outer, scope.statement = scope.statement, node
            try:
                self._visit_node(node, scope)
            finally:
                scope.statement = outer
            return
        self._visit_node(node, scope)

    def _visit_node(self, node: ast.AST, scope: _Scope) -> None:
        if isinstance(node, ast.Call):
            if self._is_ctx_call(node, scope):
                self._visit_ctx_call(node, scope)
                return
            self._visit_call(node, scope)
        elif isinstance(node, ast.Await):
            self._visit_await(node, scope)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self._check_iteration(node.iter, scope, "iteration over")
            if isinstance(node, ast.AsyncFor) and scope.is_async:
                self._report(node, "WF109", scope, f"'async for ... in {ast.unparse(node.iter)}'")
        elif isinstance(node, ast.AsyncWith) and scope.is_async:
            self._report(node, "WF109", scope, f"'async with {ast.unparse(node.items[0].context_expr)}'")
        elif isinstance(node, ast.comprehension):
            self._check_iteration(node.iter, scope, "iteration over")
        elif isinstance(node, ast.Starred) and isinstance(node.ctx, ast.Load):
            self._check_iteration(node.value, scope, "unpacking of")
        elif isinstance(node, ast.Global):
            self._report(node, "WF110", scope, f"'global {', '.join(node.names)}'",
                         message=f"'global {', '.join(node.names)}' rebinds module-level state")
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets:
                self._check_store(target, scope, "del" if isinstance(node, ast.Delete) else "assignment to")
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)
              and self._resolve(node, scope) in _IO_ATTRIBUTES):
            self._report(node, "WF106", scope, "", message=f"{ast.unparse(node)} reads process state")
            return
        for child in ast.iter_child_nodes(node):
            self._visit(child, scope)

    def _visit_ctx_call(self, node: ast.Call, scope: _Scope) -> None:
        """A context method: its callable argument runs outside replay (an activity, a side effect)."""
        assert isinstance(node.func, ast.Attribute)
        if node.func.attr == "side_effect":
            return
        for i, arg in enumerate(node.args):
            if not (i == 0 and isinstance(arg, ast.Name | ast.Attribute)):
                self._visit(arg, scope)
        for kw in node.keywords:
            self._visit(kw.value, scope)

    def _visit_call(self, node: ast.Call, scope: _Scope) -> None:
        func = node.func
        name = self._resolve(func, scope)
        if name is not None:
            self._check_named_call(node, name, scope)
        elif isinstance(func, ast.Attribute):
            self._check_method_call(node, func, scope)
        if name in _ITERATING_CALLS:
            for arg in node.args:
                self._check_iteration(arg, scope, f"{ast.unparse(func)}() of")
        last = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if last in ("when_all", "when_any") and node.args:
            self._check_iteration(node.args[0], scope, f"{last}() over")
        if last == "join" and len(node.args) == 1:
            self._check_iteration(node.args[0], scope, "join() of")

    def _check_named_call(self, node: ast.Call, name: str, scope: _Scope) -> None:
        code: str | None = None
        if name in _WALL_CLOCK or (name in _WALL_CLOCK_NO_ARGS and not node.args):
            code = "WF101"
        elif name in _UUID:
            code = "WF103"
        elif name in _SLEEP:
            code = "WF104"
        elif name == "random.Random":
            code = None if node.args or node.keywords else "WF102"
        elif name in _RANDOM_EXACT or name.startswith(_RANDOM_PREFIXES):
            code = "WF102"
        elif name in _THREAD_EXACT or name.startswith(_THREAD_PREFIXES):
            code = "WF105"
        elif name in _IO_EXACT or name.startswith(_IO_PREFIXES):
            code = "WF106"
        elif name.startswith(_EVENT_LOOP_PREFIXES):
            code = "WF108"
        elif name in _PROCESS_DEPENDENT:
            code = "WF111"
        if code is None:
            return
        shown = ast.unparse(node.func)
        what = f"{shown}()" if name == shown else f"{shown}() ({name})"
        hint = None
        if code == "WF104":
            verb = "await" if scope.is_async else "yield"
            hint = f"wait on a durable timer: {verb} ctx.create_timer(timedelta(...))"
        self._report(node, code, scope, what, hint=hint)

    def _check_method_call(self, node: ast.Call, func: ast.Attribute, scope: _Scope) -> None:
        receiver = func.value
        # pathlib: Path(...).read_text() and friends
        if (isinstance(receiver, ast.Call) and self._resolve(receiver.func, scope) in _PATH_TYPES
                and func.attr in _PATH_IO_METHODS):
            self._report(node, "WF106", scope, f"{ast.unparse(func)}()")
            return
        if func.attr == "pop" and not node.args and self._is_set(receiver, scope):
            self._report(node, "WF107", scope, "",
                         message=f"{ast.unparse(func)}() takes an arbitrary element of a set")
            return
        root = _root_name(receiver)
        if func.attr in _MUTATORS and root is not None and self._is_global(root, scope):
            self._report(node, "WF110", scope, "",
                         message=f"{ast.unparse(func)}() mutates the module-level {root!r}")

    def _visit_await(self, node: ast.Await, scope: _Scope) -> None:
        value = node.value
        if not scope.is_async or not isinstance(value, ast.Call):
            return
        func = value.func
        if isinstance(func, ast.Attribute) and _root_name(func) in scope.ctx_names:
            return
        last = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if last in ("when_all", "when_any"):
            return
        if isinstance(func, ast.Name) and self._function_named(func.id, scope) is not None:
            return  # a helper coroutine of this file: checked itself
        name = self._resolve(func, scope)
        if name is not None and (name.startswith(_EVENT_LOOP_PREFIXES) or name in _SLEEP):
            return  # reported as WF104 / WF108
        self._report(node, "WF109", scope, f"'await {_clip(ast.unparse(value))}'")

    def _check_iteration(self, node: ast.AST, scope: _Scope, how: str) -> None:
        if self._is_set(node, scope):
            self._report(node, "WF107", scope, "", message=f"{how} the set {_clip(ast.unparse(node))}")

    def _check_store(self, target: ast.AST, scope: _Scope, how: str) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._check_store(element, scope, how)
            return
        if isinstance(target, ast.Starred):
            self._check_store(target.value, scope, how)
            return
        if isinstance(target, ast.Subscript | ast.Attribute):
            root = _root_name(target)
            if root is not None and self._is_global(root, scope, attribute=isinstance(target, ast.Attribute)):
                self._report(target, "WF110", scope, "",
                             message=f"{how} {_clip(ast.unparse(target))} mutates the module-level {root!r}")

    def _is_global(self, name: str, scope: _Scope, *, attribute: bool = False) -> bool:
        if name in scope.local_names or name in scope.ctx_names:
            return False
        outer = scope.fn.parent
        while outer is not None:  # closures over an enclosing function's locals are local state
            args = outer.node.args
            if any(a.arg == name for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]):
                return False
            for n in _own_nodes(outer.node):
                if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets):
                    return False
            outer = outer.parent
        if name in self.module.mutable_globals:
            return True
        return attribute and name not in self.module.imports and name in self.module.module_names

    # -- helpers and nested functions --------------------------------------------------------------

    def _function_named(self, name: str, scope: _Scope) -> _Def | None:
        """The function ``name`` refers to in ``scope``: a nested def (innermost first) or a module function."""
        if name in scope.local_names:
            return None
        fn: _Def | None = scope.fn
        while fn is not None:
            nested = [d for d in self.module.defs if d.parent is fn and d.node.name == name]
            if nested:
                return nested[-1]
            fn = fn.parent
        candidates = self.module.module_functions.get(name, [])
        return candidates[-1] if candidates else None

    def _follow_references(self, scope: _Scope) -> None:
        """Check the functions this one refers to, except as arguments of context methods."""
        for ref, call in self._references(scope):
            target = self._function_named(ref.id, scope)
            if (target is None or target is scope.fn or target.node in self.orchestrators
                    or target.node.name in self.module.activities):
                continue
            ctx_names = self._ctx_names_for(target, call, scope)
            self._check_function(target, scope.orchestrator, ctx_names, f"helper {target.qualname!r}")

    def _references(self, scope: _Scope) -> Iterator[tuple[ast.Name, ast.Call | None]]:
        stack: list[tuple[ast.AST, ast.Call | None]] = [(s, None) for s in scope.fn.node.body]
        while stack:
            node, call = stack.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                yield node, call
                continue
            if isinstance(node, ast.Call):
                if self._is_ctx_call(node, scope):
                    assert isinstance(node.func, ast.Attribute)
                    if node.func.attr != "side_effect":
                        rest = [a for i, a in enumerate(node.args) if i or not isinstance(a, ast.Name | ast.Attribute)]
                        stack.extend((a, None) for a in [*rest, *(k.value for k in node.keywords)])
                    continue
                stack.append((node.func, node if isinstance(node.func, ast.Name) else None))
                stack.extend((a, None) for a in [*node.args, *(k.value for k in node.keywords)])
                continue
            stack.extend((c, None) for c in ast.iter_child_nodes(node))

    def _ctx_names_for(self, target: _Def, call: ast.Call | None, scope: _Scope) -> set[str]:
        names: set[str] = set()
        if target.parent is not None:
            names |= scope.ctx_names  # closures see the enclosing context
        for i, a in enumerate(target.node.args.posonlyargs + target.node.args.args):
            if self.module.context_annotation(a) == "orchestrator" or a.arg in ("ctx", "context"):
                names.add(a.arg)
            if call is not None and i < len(call.args):
                arg = call.args[i]
                if isinstance(arg, ast.Name) and arg.id in scope.ctx_names:
                    names.add(a.arg)
        if call is not None:
            for kw in call.keywords:
                if kw.arg and isinstance(kw.value, ast.Name) and kw.value.id in scope.ctx_names:
                    names.add(kw.arg)
        return names

    # -- reporting -----------------------------------------------------------------------------------

    def _report(self, node: ast.AST, code: str, scope: _Scope, what: str, *, message: str | None = None,
                hint: str | None = None) -> None:
        line = getattr(node, "lineno", 1)
        column = getattr(node, "col_offset", 0) + 1
        end = getattr(node, "end_lineno", None) or line
        if scope.statement is not None and scope.statement.lineno <= line:
            end = max(end, scope.statement.end_lineno or end)  # a comment after a multi-line statement
        for n in range(line, end + 1):
            codes = self.module.suppressed.get(n)
            if codes is not None and (_ALL in codes or code in codes):
                return
        rule = RULES[code]
        where = f"orchestrator {scope.orchestrator.qualname!r}"
        if scope.via:
            where = f"{scope.via}, called from {where}"
        text = f"{message or what + ' ' + rule.summary} in {where}"
        key = (line, column, code)
        if key not in self.findings:
            self.findings[key] = Finding(self.module.filename, line, column, code, text, hint or rule.hint,
                                         scope.orchestrator.qualname)


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."

# -- entry points ----------------------------------------------------------------------------------------


def parse(source: str | bytes, filename: str) -> _Module:
    """Parse one file; ``SyntaxError`` (with file and line) if it is not Python."""
    try:
        tree = ast.parse(source, filename=filename)
        text = source.decode(_encoding(source)) if isinstance(source, bytes) else source
    except SyntaxError as err:
        if err.filename is None:  # some errors (null bytes) come without the file
            err.filename, err.lineno = filename, err.lineno or 1
        raise
    except (ValueError, LookupError) as err:  # undecodable text, an unknown encoding cookie
        raise SyntaxError(f"not a Python source file: {err}", (filename, 1, 1, None)) from None
    return _Module(tree, filename, text)


def _encoding(data: bytes) -> str:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return encoding


def _check(module: _Module, orchestrators: list[_Def]) -> list[Finding]:
    checker = _Checker(module, orchestrators)
    for d in orchestrators:
        checker.check_orchestrator(d)
    return sorted(checker.findings.values())


def lint_source(source: str | bytes, filename: str = "<string>") -> list[Finding]:
    """Lint one file's text."""
    module = parse(source, filename)
    return _check(module, module.orchestrators(module.registered))


def python_files(paths: Iterable[str | Path]) -> list[Path]:
    """The ``.py`` files named or found under ``paths`` (hidden folders and ``__pycache__`` skipped)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(path.rglob("*.py")):
                parts = file.relative_to(path).parts[:-1]
                if not any(p.startswith(".") or p == "__pycache__" for p in parts):
                    found.append(file)
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return found


def lint_paths(paths: Sequence[str | Path]) -> list[Finding]:
    """Lint files and folders; an orchestrator imported and registered in one file is found in its own."""
    return _lint_files(python_files(paths))[0]


def _lint_files(files: list[Path]) -> tuple[list[Finding], int]:
    """The findings, and how many orchestrators were checked."""
    modules = [parse(file.read_bytes(), str(file)) for file in files]
    elsewhere: set[str] = set().union(*(m.registered_elsewhere for m in modules)) if modules else set()
    findings: list[Finding] = []
    count = 0
    for file, module in zip(files, modules, strict=True):
        dotted = module.import_names(file.resolve())
        names = {q.rsplit(".", 1)[1] for q in elsewhere if q.rsplit(".", 1)[0] in dotted}
        orchestrators = module.orchestrators(module.registered | names)
        count += len(orchestrators)
        findings.extend(_check(module, orchestrators))
    return findings, count


def run_command(paths: Sequence[str | Path], *, output: str = "text", ignore: str = "") -> int:
    """``wftest lint``: print the findings; 0 if there are none, 1 if there are, 2 if a file cannot be read."""
    skip = {code.strip().upper() for code in ignore.split(",") if code.strip()}
    unknown = sorted(skip - RULES.keys())
    if unknown:
        print(f"wftest lint: unknown rule code {', '.join(unknown)} in --ignore; the codes are {', '.join(RULES)}",
              file=sys.stderr)
        return 2
    try:
        files = python_files(paths)
        findings, orchestrators = _lint_files(files)
    except SyntaxError as err:
        where = f"{err.filename}:{err.lineno or 1}:{err.offset or 1}"
        print(f"wftest lint: {where}: cannot parse the file: {err.msg}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"wftest lint: {err}", file=sys.stderr)
        return 2
    findings = [f for f in findings if f.code not in skip]
    if output == "json":
        print(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        for finding in findings:
            print(finding.format())
        checked = f"{_plural(len(files), 'file')}, {_plural(orchestrators, 'orchestrator')} checked"
        print(f"{_plural(len(findings), 'finding')} ({checked})" if findings else f"no findings ({checked})")
    return 1 if findings else 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"
