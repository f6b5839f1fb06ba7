"""The workflow linter (``wftest.lint`` and ``wftest lint``): a corpus of good and bad orchestrators.

Each snippet marks the lines that must be reported with ``# expect: CODE``; every other line must be
clean. The test compares the (line, code) pairs found with the marked ones, so a snippet documents
both what is caught and what is left alone.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wftest import cli
from wftest.lint import RULES, Finding, lint_paths, lint_source

ROOT = Path(__file__).resolve().parent.parent
_EXPECT = re.compile(r"#.*expect: ((?:WF\d{3}[ ,]*)+)")


def expected(source: str) -> set[tuple[int, str]]:
    marks: set[tuple[int, str]] = set()
    for number, line in enumerate(source.splitlines(), start=1):
        match = _EXPECT.search(line)
        if match:
            marks.update((number, code) for code in re.findall(r"WF\d{3}", match.group(1)))
    return marks


def found(source: str) -> set[tuple[int, str]]:
    return {(f.line, f.code) for f in lint_source(source, "snippet.py")}


CORPUS: dict[str, str] = {
    # -- WF101 wall-clock time, through every import form -------------------------------------------
    "wall_clock": '''
        import time
        import datetime
        from datetime import date, timedelta
        from wftest import OrchestrationContext

        def wf(ctx: OrchestrationContext, _):
            a = datetime.datetime.now()                      # expect: WF101
            b = datetime.datetime.utcnow()                   # expect: WF101
            c = date.today()                                 # expect: WF101
            d = time.time() + time.monotonic()               # expect: WF101, WF101
            e = time.perf_counter_ns()                       # expect: WF101
            f = time.localtime()                             # expect: WF101
            g = time.localtime(0)                            # a fixed instant: fine
            h = ctx.current_utc_datetime + timedelta(days=1) # the replacement: fine
            i = datetime.datetime.fromisoformat("2024-01-01")
            yield ctx.create_timer(h)
    ''',
    "wall_clock_aliases": '''
        import time as t
        import datetime as d
        from datetime import datetime as dt
        from time import time as now, perf_counter

        def wf(ctx, _):
            yield ctx.call_activity("a", input=dt.now())     # expect: WF101
            x = d.datetime.now(tz=d.timezone.utc)            # expect: WF101
            y = t.time()                                     # expect: WF101
            z = now() - perf_counter()                       # expect: WF101, WF101
            return x, y, z
    ''',
    # -- WF102 random, WF103 uuid ---------------------------------------------------------------------
    "random_and_uuid": '''
        import os
        import random
        import secrets
        import uuid
        from random import choice as pick

        def wf(ctx, items):
            a = random.random()                              # expect: WF102
            b = random.randint(1, 6)                         # expect: WF102
            c = pick(items)                                  # expect: WF102
            d = random.Random()                              # expect: WF102
            e = random.Random(ctx.instance_id).random()      # seeded from the instance: fine
            f = secrets.token_hex(8) + os.urandom(4).hex()   # expect: WF102, WF102
            g = uuid.uuid4()                                 # expect: WF103
            h = uuid.uuid1()                                 # expect: WF103
            i = uuid.uuid5(uuid.NAMESPACE_URL, ctx.instance_id)  # deterministic: fine
            j = ctx.random().randint(1, 6)                   # the replacement: fine
            k = ctx.new_uuid()
            yield ctx.call_activity("use", input=[a, b, c, d, e, f, g, h, i, j, k])
    ''',
    "local_name_shadows_an_import": '''
        import random

        def wf(ctx, _):
            random = ctx.random()                            # a local: random.randint below is ctx's generator
            n = random.randint(1, 6)
            yield ctx.call_activity("roll", input=n)
    ''',
    # -- WF104 sleep -----------------------------------------------------------------------------------
    "sleep": '''
        import asyncio
        import time
        from time import sleep

        def wf(ctx, _):
            time.sleep(1)                                    # expect: WF104
            sleep(2)                                         # expect: WF104
            yield ctx.call_activity("a")

        async def async_wf(ctx, _):
            await asyncio.sleep(1)                           # expect: WF104
            await ctx.call_activity("a")
    ''',
    # -- WF105 threads and processes ---------------------------------------------------------------
    "threads": '''
        import os
        import subprocess
        import threading
        from concurrent.futures import ThreadPoolExecutor as Pool

        def wf(ctx, _):
            threading.Thread(target=print).start()           # expect: WF105
            with Pool() as pool:                             # expect: WF105
                pool.submit(print)
            subprocess.run(["ls"])                           # expect: WF105
            os.system("ls")                                  # expect: WF105
            yield ctx.call_activity("a")
    ''',
    # -- WF106 I/O -------------------------------------------------------------------------------------
    "io": '''
        import os
        import socket
        import urllib.request
        from pathlib import Path

        import httpx
        import requests

        def wf(ctx, _):
            config = open("config.json").read()              # expect: WF106
            r = requests.get("https://example.com")          # expect: WF106
            c = httpx.Client()                               # expect: WF106
            u = urllib.request.urlopen("https://example.com")  # expect: WF106
            s = socket.create_connection(("localhost", 80))  # expect: WF106
            home = os.environ["HOME"]                        # expect: WF106
            user = os.getenv("USER")                         # expect: WF106
            text = Path("notes.txt").read_text()             # expect: WF106
            name = Path("notes.txt").name                    # no I/O: fine
            yield ctx.call_activity("a", input=[config, r, c, u, s, home, user, text, name])
    ''',
    # -- WF107 iteration over sets -----------------------------------------------------------------
    "set_iteration": '''
        from wftest import when_all

        def wf(ctx, skus: list[str], extra: set[str]):
            for sku in {"a", "b"}:                           # expect: WF107
                yield ctx.call_activity("reserve", input=sku)
            unique = set(skus)
            tasks = [ctx.call_activity("reserve", input=s) for s in unique]  # expect: WF107
            yield when_all(tasks)
            for s in frozenset(skus):                        # expect: WF107
                pass
            for s in {s.upper() for s in skus}:              # expect: WF107
                pass
            for s in extra:                                  # a parameter annotated set[...]: expect: WF107
                pass
            both = unique | extra
            ordered = list(both)                             # expect: WF107
            label = ",".join(unique)                         # expect: WF107
            first = unique.pop()                             # expect: WF107
            yield when_all({ctx.call_activity("r", input=s) for s in skus})  # a set of tasks: expect: WF107
            for s in sorted(unique):                         # sorted: fine
                yield ctx.call_activity("reserve", input=s)
            count = len(unique) + ("a" in unique)            # no iteration: fine
            for key in {"a": 1}:                             # a dict keeps insertion order: fine
                pass
            return ordered, label, first, count
    ''',
    "set_name_rebound_to_a_list_is_not_a_set": '''
        def wf(ctx, skus):
            items = set(skus)
            items = sorted(items)
            for sku in items:                                # a list by now: fine
                yield ctx.call_activity("reserve", input=sku)
    ''',
    "keys_views_combined_are_sets": '''
        def wf(ctx, a: dict, b: dict):
            for key in a.keys() - b.keys():                  # expect: WF107
                yield ctx.call_activity("diff", input=key)
    ''',
    # -- WF108 asyncio and WF109 foreign awaitables in async orchestrators ----------------------------
    "async_orchestrator": '''
        import asyncio

        import aiohttp
        import wftest
        from wftest import OrchestrationContext, when_all
        from myapp.clients import fetch_price

        async def helper(ctx, sku):
            return await ctx.call_activity("price", input=sku)

        async def wf(ctx: OrchestrationContext, skus):
            a = await ctx.call_activity("a")
            b = await when_all([ctx.call_activity("b", input=s) for s in skus])
            c = await wftest.when_any([ctx.create_timer(a), ctx.wait_for_external_event("go")])
            d = await helper(ctx, "x")                       # a coroutine of this file: checked itself, fine
            task = ctx.call_activity("e")
            e = await task                                   # a name: assumed to hold a task
            f = await asyncio.gather(task)                   # expect: WF108
            g = asyncio.create_task(helper(ctx, "y"))        # expect: WF108
            h = await fetch_price("x")                       # expect: WF109
            async with aiohttp.ClientSession() as s:         # expect: WF109, WF106
                pass
            return [a, b, c, d, e, f, g, h]
    ''',
    "asyncio_in_a_generator_orchestrator": '''
        import asyncio

        def wf(ctx, _):
            loop = asyncio.get_event_loop()                  # expect: WF108
            yield ctx.call_activity("a")
    ''',
    # -- WF110 global mutable state ------------------------------------------------------------------
    "global_state": '''
        from collections import defaultdict

        SEEN: set[str] = set()
        CACHE = {}
        RESULTS = []
        COUNTS = defaultdict(int)
        LIMIT = 10                                           # a constant
        calls = 0

        class Settings:
            verbose = False

        SETTINGS = Settings()

        def wf(ctx, sku):
            global calls                                     # expect: WF110
            calls += 1
            SEEN.add(sku)                                    # expect: WF110
            CACHE[sku] = True                                # expect: WF110
            RESULTS.append(sku)                              # expect: WF110
            COUNTS[sku] += 1                                 # expect: WF110
            del CACHE[sku]                                   # expect: WF110
            SETTINGS.verbose = True                          # expect: WF110
            if sku in CACHE or len(RESULTS) > LIMIT:         # reading: not reported
                pass
            local = []
            local.append(sku)                                # local state: fine
            yield ctx.call_activity("a", input=local)
    ''',
    "local_name_shadowing_a_global_is_local": '''
        CACHE = {}

        def wf(ctx, sku):
            CACHE = {}
            CACHE[sku] = 1                                   # a local of the same name: fine
            yield ctx.call_activity("a", input=CACHE)
    ''',
    # -- WF111 process-dependent values --------------------------------------------------------------
    "process_dependent": '''
        import os

        def wf(ctx, name):
            shard = hash(name) % 8                           # expect: WF111
            pid = os.getpid()                                # expect: WF111
            yield ctx.call_activity("a", input=[shard, pid])
    ''',
}

DETECTION: dict[str, str] = {
    # -- which functions are orchestrators --------------------------------------------------------
    "annotated_plain_function": '''
        import random
        from wftest import OrchestrationContext

        def wf(ctx: OrchestrationContext):                   # returns at once, yet an orchestrator
            return random.random()                           # expect: WF102
    ''',
    "annotation_forms": '''
        import random
        import wftest

        def a(ctx: wftest.OrchestrationContext):
            return random.random()                           # expect: WF102

        def b(ctx: "OrchestrationContext"):
            return random.random()                           # expect: WF102

        def c(context: "DaprWorkflowContext", _):
            return random.random()                           # expect: WF102
    ''',
    "generator_calling_context_methods": '''
        import random

        def wf(context, _):                                  # any name, unannotated
            yield context.create_timer(random.random())      # expect: WF102
    ''',
    "activities_are_not_orchestrators": '''
        import random
        from datetime import datetime
        from wftest import ActivityContext, ActivityTester

        def charge(ctx: ActivityContext, order):
            return datetime.now(), random.random()           # an activity may do anything

        def plain(ctx, _):
            return random.random()                           # not registered, not a generator: not known

        def test_charge():
            tester = ActivityTester()
            tester.run(charge, {})
            tester.run(plain, {})
    ''',
    "registered_functions": '''
        import random

        def one(ctx, _):
            return random.random()                           # expect: WF102

        def two(ctx, _):
            return random.random()                           # expect: WF102

        def three(ctx, _):
            return random.random()                           # expect: WF102

        def four(ctx, _):
            return random.random()                           # expect: WF102

        def five(ctx, _):
            return random.random()                           # expect: WF102

        def setup(engine, registry, client, workflow_tester):
            engine.add_orchestrator(one)
            registry.add_named_orchestrator("second", two)
            client.schedule_new_orchestration(three, input=1)
            workflow_tester.run(four)
            yield_ = None
            return yield_

        def parent(ctx, _):
            return (yield ctx.call_sub_orchestrator(five))
    ''',
    "decorated_functions": '''
        import random

        @wfr.workflow(name="order")
        def order(ctx, _):
            return random.random()                           # expect: WF102

        @orchestrator
        def other(ctx, _):
            return random.random()                           # expect: WF102
    ''',
    "methods": '''
        import random
        from wftest import OrchestrationContext

        class Orders:
            def place(self, ctx: OrchestrationContext, order):
                yield ctx.call_activity("a", input=random.random())  # expect: WF102

            def activity(self, ctx, order):
                return random.random()                       # not an orchestrator
    ''',
    "orchestrators_defined_inside_tests": '''
        import time

        def test_something(workflow_tester):
            def wf(ctx, _):
                yield ctx.call_activity("a", input=time.time())  # expect: WF101

            workflow_tester.run(wf)
    ''',
    # -- what an orchestrator runs -------------------------------------------------------------------
    "module_helpers_are_followed": '''
        import random
        import time

        def pick(items):
            return random.choice(items)                      # expect: WF102

        def steps(ctx, n):
            yield ctx.create_timer(time.time())              # expect: WF101

        def unused(items):
            return random.choice(items)                      # no orchestrator calls it: fine

        def wf(ctx, items):
            first = pick(items)
            yield from steps(ctx, 1)
            return (yield ctx.call_activity("a", input=first))
    ''',
    "nested_helpers_only_if_referenced": '''
        import random

        def wf(ctx, items):
            def never_called():
                return random.random()                       # dead code: fine

            def called():
                return random.random()                       # expect: WF102

            def as_key(item):
                return random.random()                       # expect: WF102

            ordered = sorted(items, key=as_key)
            bump = lambda: random.random()                   # expect: WF102
            yield ctx.call_activity("a", input=[called(), ordered, bump])
    ''',
    "code_run_outside_replay_is_not_checked": '''
        import secrets
        import uuid
        from datetime import datetime

        def make_token():
            return secrets.token_hex(8)

        def charge(ctx, order):
            return datetime.now()                            # an activity: its code is not the orchestrator's

        def wf(ctx, order):
            token = ctx.side_effect(make_token)              # recorded once in history: fine
            other = ctx.side_effect(lambda: uuid.uuid4().hex)
            receipt = yield ctx.call_activity(charge, input={"token": token, "at": datetime.now()})  # expect: WF101
            steps = [charge]                                 # activities are never followed
            for step in steps:
                yield ctx.call_activity(step, input=order)
            return receipt, other
    ''',
    "recursive_helpers_terminate": '''
        import random

        def walk(ctx, n):
            if n:
                yield from walk(ctx, n - 1)
            yield ctx.call_activity("a", input=random.random())  # expect: WF102

        def wf(ctx, _):
            yield from walk(ctx, 3)
    ''',
    # -- suppression comments --------------------------------------------------------------------------
    "suppression": '''
        import random
        import time

        def wf(ctx, _):
            a = time.time()  # wftest: ignore
            b = time.time()  # wftest: ignore[WF101]
            c = time.time() + random.random()  # wftest: ignore[WF101]  expect: WF102
            d = time.time() + random.random()  # wftest: ignore[wf101, WF102]
            e = time.time()  # wftest: ignore[WF102]  expect: WF101
            f = "# wftest: ignore"; g = time.time()  # expect: WF101
            h = max(
                time.time(),
                0,
            )  # wftest: ignore[WF101]
            yield ctx.call_activity("a", input=[a, b, c, d, e, f, g, h])
    ''',
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_rule_corpus(name: str) -> None:
    source = textwrap.dedent(CORPUS[name])
    assert found(source) == expected(source)


@pytest.mark.parametrize("name", sorted(DETECTION))
def test_orchestrator_detection_and_reach(name: str) -> None:
    source = textwrap.dedent(DETECTION[name])
    assert found(source) == expected(source)


def test_every_rule_is_exercised_by_the_corpus_and_documented() -> None:
    codes = {code for source in CORPUS.values() for _, code in expected(textwrap.dedent(source))}
    assert codes == set(RULES)
    docs = (ROOT / "docs" / "lint.md").read_text()
    for code, rule in RULES.items():
        assert f"`{code}`" in docs and rule.name in docs, f"{code} ({rule.name}) is not documented in docs/lint.md"


def test_finding_names_file_line_column_and_hint() -> None:
    source = "import time\n\ndef wf(ctx, _):\n    yield ctx.create_timer(time.time())\n"
    [finding] = lint_source(source, "flows.py")
    assert (finding.file, finding.line, finding.column, finding.code) == ("flows.py", 4, 28, "WF101")
    assert finding.orchestrator == "wf"
    assert finding.format() == (
        "flows.py:4:28: WF101 time.time() reads the wall clock in orchestrator 'wf' "
        "(use ctx.current_utc_datetime, the orchestration time: the same on replay)"
    )


def test_a_finding_in_a_helper_names_the_orchestrator_that_reaches_it() -> None:
    source = textwrap.dedent('''
        import time

        def stamp(order):
            return {**order, "at": time.time()}

        def entry(ctx, order):
            yield ctx.call_activity("ship", input=stamp(order))
    ''')
    [finding] = lint_source(source)
    assert finding.line == 5 and finding.orchestrator == "entry"
    assert finding.message == "time.time() reads the wall clock in helper 'stamp', called from orchestrator 'entry'"


def test_the_sleep_hint_matches_the_kind_of_orchestrator() -> None:
    hints = {f.line: f.hint for f in lint_source(textwrap.dedent(CORPUS["sleep"]))}
    assert "yield ctx.create_timer" in hints[7] and "await ctx.create_timer" in hints[12]


def test_unparsable_source_raises_syntax_error_with_file_and_line() -> None:
    with pytest.raises(SyntaxError) as err:
        lint_source("def wf(ctx):\n    yield (\n", "broken.py")
    assert err.value.filename == "broken.py" and err.value.lineno is not None


def test_registration_in_another_file_is_followed_by_import(tmp_path: Path) -> None:
    (tmp_path / "orders.py").write_text("import random\n\ndef place_order(ctx, order):\n    return random.random()\n")
    (tmp_path / "other.py").write_text("import random\n\ndef place_order(ctx, order):\n    return random.random()\n")
    (tmp_path / "app.py").write_text(
        "from orders import place_order\nfrom wftest import Registry\n\n"
        "registry = Registry()\nregistry.add_orchestrator(place_order)\n"
    )
    assert lint_paths(tmp_path / "orders.py") == []  # alone, nothing says it is an orchestrator
    findings = lint_paths([tmp_path])
    assert [(Path(f.file).name, f.line, f.code) for f in findings] == [("orders.py", 4, "WF102")]


def test_folders_are_searched_recursively_skipping_hidden_ones(tmp_path: Path) -> None:
    bad = "import time\n\ndef wf(ctx, _):\n    yield ctx.create_timer(time.time())\n"
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "flows.py").write_text(bad)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "flows.py").write_text(bad)
    assert [Path(f.file).relative_to(tmp_path).as_posix() for f in lint_paths(tmp_path)] == ["pkg/sub/flows.py"]


def test_a_missing_path_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        lint_paths([tmp_path / "no-such-dir"])


def test_findings_sort_by_file_line_and_column() -> None:
    findings = lint_source(textwrap.dedent(CORPUS["random_and_uuid"]))
    assert findings == sorted(findings)
    assert isinstance(findings[0], Finding)


# -- the command line ---------------------------------------------------------------------------------


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    (tmp_path / "clean.py").write_text("def wf(ctx, _):\n    return (yield ctx.call_activity('a'))\n")
    (tmp_path / "dirty.py").write_text(
        "import time, uuid\n\ndef wf(ctx, _):\n    yield ctx.create_timer(time.time())\n    return uuid.uuid4()\n"
    )
    return tmp_path


def test_cli_exits_1_and_prints_one_line_per_finding(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["lint", str(flows)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    dirty = flows / "dirty.py"
    assert out[0].startswith(f"{dirty}:4:28: WF101 time.time() reads the wall clock in orchestrator 'wf' (use ")
    assert out[1].startswith(f"{dirty}:5:12: WF103 uuid.uuid4() ")
    assert out[2] == "2 findings (2 files, 2 orchestrators checked)"


def test_cli_exits_0_when_clean(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lint", str(flows / "clean.py")]) == 0
    assert capsys.readouterr().out.strip() == "no findings (1 file, 1 orchestrator checked)"


def test_cli_json_output(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lint", "--format", "json", str(flows)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [(d["line"], d["column"], d["code"]) for d in data] == [(4, 28, "WF101"), (5, 12, "WF103")]
    assert set(data[0]) == {"file", "line", "column", "code", "message", "hint", "orchestrator"}


def test_cli_ignore_option_skips_codes(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lint", "--ignore", "WF101,wf103", str(flows)]) == 0
    assert cli.main(["lint", "--ignore", "WF999", str(flows)]) == 2
    assert "unknown rule code WF999" in capsys.readouterr().err


def test_cli_exits_2_on_an_unparsable_file_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def wf(ctx):\n\n    yield ctx.call_activity('a'\n")
    assert cli.main(["lint", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"{broken}:3:" in err and "cannot parse" in err


def test_cli_exits_2_on_a_binary_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "blob.py"
    binary.write_bytes(b"\x00\x01\x02")
    assert cli.main(["lint", str(binary)]) == 2
    assert f"{binary}:1:" in capsys.readouterr().err


def test_cli_exits_2_on_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lint", str(tmp_path / "missing.py")]) == 2
    assert "missing.py: no such file or directory" in capsys.readouterr().err


def test_the_examples_and_the_demo_are_clean() -> None:
    # a subprocess, as a user runs it: the shipped examples must pass their own linter
    done = subprocess.run(
        [sys.executable, "-m", "wftest", "lint", "examples", "wftest/_demo.py"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    checked = re.search(r"(\d+) orchestrators checked", done.stdout)
    assert checked is not None and int(checked.group(1)) >= 15, done.stdout
