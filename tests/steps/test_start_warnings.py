"""Start-time warnings that catch typos: topics that connect nothing (with "did you mean"), a
dead-letter topic nobody subscribes to, and a step file named so it is never loaded. Printed
by `motet steps` (errors with --strict) and logged once when a runtime starts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from motet import RuntimeOptions, cron, http, open_runtime, queue, state
from motet._runtime import Runtime
from motet.backends import MemoryBackend
from motet.cli._main import main
from motet.project import ProjectConfig
from motet.steps import load_step
from motet.steps._discovery import stray_step_files


async def handler(_input: Any, ctx: Any) -> None:
    pass


def warnings_of(steps: list[Any], project: ProjectConfig | None = None) -> list[str]:
    return Runtime(steps, backend=MemoryBackend(), project=project).start_warnings()


def greeting_steps(subscribed: str = "greeting.requested") -> list[Any]:
    return [
        load_step(
            {
                "name": "Hello",
                "triggers": [http("POST", "/hello")],
                "enqueues": ["greeting.requested"],
            },
            handler,
        ),
        load_step({"name": "ProcessGreeting", "triggers": [queue(subscribed)]}, handler),
    ]


def test_a_misspelt_subscription_is_two_warnings_with_did_you_mean() -> None:
    lines = warnings_of(greeting_steps("greeting.requestd"))
    assert lines == [
        "topic 'greeting.requestd' is subscribed by step(s) 'ProcessGreeting' but no step "
        "emits it (did you mean 'greeting.requested'?); if it comes from outside (motet emit, "
        "Runtime.emit), list it in a noop step's virtualEmits",
        "topic 'greeting.requested' is emitted by step(s) 'Hello' but no step subscribes to "
        "it, so its messages go nowhere (did you mean 'greeting.requestd'?)",
    ]


def test_a_correct_project_has_no_warnings() -> None:
    steps = [
        *greeting_steps(),
        # A topic fed from outside, said so the Motia way: a noop step that virtualEmits it.
        load_step({"name": "Ingest", "triggers": [queue("orders.imported")]}, handler),
        load_step({"type": "noop", "name": "Warehouse", "virtualEmits": ["orders.imported"]}, None),
        # Internal topics (cron ticks, state changes) are the runtime's own.
        load_step({"name": "Nightly", "triggers": [cron("0 3 * * *")]}, handler),
        load_step({"name": "Watch", "triggers": [state("orders")]}, handler),
        # A dead-letter topic with a subscriber, fed by the runtime.
        load_step(
            {"name": "Pay", "triggers": [queue("pay", dead_letter_queue="pay.failed")]}, handler
        ),
        load_step({"name": "PayFailed", "triggers": [queue("pay.failed")]}, handler),
        load_step({"name": "Checkout", "triggers": [http("POST", "/c")], "enqueues": ["pay"]}, h),
    ]
    assert warnings_of(steps) == []


async def h(request: Any, ctx: Any) -> None:
    pass


def test_a_dead_letter_topic_without_subscriber_warns_that_letters_are_still_kept() -> None:
    steps = [
        load_step({"name": "Send", "triggers": [http("POST", "/m")], "enqueues": ["m"]}, h),
        load_step({"name": "Process", "triggers": [queue("m")]}, handler),
        load_step({"name": "Record", "triggers": [queue("message.failed")]}, handler),
    ]
    project = ProjectConfig(queues={"m": _dlq("message.faild")})
    assert warnings_of(steps, project) == [
        "topic 'message.failed' is subscribed by step(s) 'Record' but no step emits it (did "
        "you mean 'message.faild'?); if it comes from outside (motet emit, Runtime.emit), "
        "list it in a noop step's virtualEmits",
        "dead_letter_queue topic 'message.faild' (of 'Process@m') has no subscriber (did you "
        "mean 'message.failed'?); dead letters are still kept in the dead-letter store "
        "(motet dlq list)",
    ]
    assert warnings_of(steps, ProjectConfig(queues={"m": _dlq("message.failed")})) == []


def _dlq(topic: str) -> Any:
    from motet.steps import QueueOverrides

    return QueueOverrides(dead_letter_queue=topic)


STEP = """\
config = {"name": "%s", "triggers": [{"type": "queue", "topic": "t"}], "enqueues": ["t"]}

async def handler(data, ctx):
    pass
"""


def project_with_a_misnamed_step(root: Path) -> Path:
    steps = root / "steps"
    (steps / "greetings").mkdir(parents=True)
    (steps / "greetings" / "hello_step.py").write_text(STEP % "Hello")
    (steps / "greetings" / "goodbye.py").write_text(
        STEP % "Goodbye" + "\nimport pathlib\npathlib.Path('imported').touch()\n"
    )
    (steps / "greetings" / "helpers.py").write_text("config = {}\n")  # no handler
    (steps / "greetings" / "broken.py").write_text("def handler(:\n")  # not Python
    (steps / "greetings" / "also.steps.py").write_text("from x import handler\nconfig: dict = {}\n")
    return steps


def test_misnamed_step_files_are_found_without_importing_them(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    steps = project_with_a_misnamed_step(tmp_path)
    found = stray_step_files(steps)
    assert [p.name for p in found] == ["also.steps.py", "goodbye.py"]
    assert not (tmp_path / "imported").exists()


async def test_open_runtime_on_a_folder_checks_its_files(
    tmp_path: Path, autojump_clock: Any
) -> None:
    project_with_a_misnamed_step(tmp_path)
    seen: list[str] = []
    async with open_runtime("steps", root=tmp_path, project=ProjectConfig(root=tmp_path)) as rt:
        assert rt.hub is not None
        seen = [line for line in rt.start_warnings()]
    assert seen == [
        "steps/greetings/also.steps.py defines `config` and `handler` but is not loaded: step "
        "files are named *_step.py or *.step.py (rename it to also.steps_step.py)",
        "steps/greetings/goodbye.py defines `config` and `handler` but is not loaded: step "
        "files are named *_step.py or *.step.py (rename it to goodbye_step.py)",
    ]


async def test_the_runtime_logs_the_warnings_once_when_it_starts(autojump_clock: Any) -> None:
    async def started_with(steps: list[Any]) -> list[str]:
        out = io.StringIO()
        options = RuntimeOptions(log_stream=out, shutdown_timeout=0.0)
        async with open_runtime(steps, backend=MemoryBackend(), options=options):
            pass
        return out.getvalue().splitlines()

    lines = await started_with(greeting_steps("greeting.requestd"))
    warned = [line for line in lines if " WARN  [motet] " in line]
    assert len(warned) == 2 and all("greeting.requestd" in w for w in warned)
    assert "motet runtime started" in lines[2]  # after the warnings
    assert not [line for line in await started_with(greeting_steps()) if " WARN " in line]


def cli(root: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--project", str(root), "steps", *args])


def test_motet_steps_prints_warnings_and_strict_makes_them_errors(tmp_path: Path) -> None:
    project_with_a_misnamed_step(tmp_path)
    plain = cli(tmp_path)
    strict = cli(tmp_path, "--strict")
    assert plain.exit_code == 0, plain.output
    assert "Hello" in plain.stdout and "warning" not in plain.stdout
    assert plain.stderr.count("motet: warning: ") == 2
    assert "goodbye.py defines `config` and `handler` but is not loaded" in plain.stderr
    assert strict.exit_code == 2
    assert "motet: error: 2 warning(s), which --strict makes errors" in strict.stderr


def test_motet_steps_strict_passes_a_clean_project(tmp_path: Path) -> None:
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "loop_step.py").write_text(STEP % "Loop")
    (steps / "util.py").write_text("def helper():\n    return 1\n")
    result = cli(tmp_path, "--strict")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_without_a_folder_the_projects_is_checked_when_the_steps_come_from_it(
    tmp_path: Path,
) -> None:
    from motet.steps import load_steps

    project_with_a_misnamed_step(tmp_path)
    project = ProjectConfig(root=tmp_path)
    from_folder = Runtime(load_steps(tmp_path / "steps"), backend=MemoryBackend(), project=project)
    inline = Runtime(greeting_steps(), backend=MemoryBackend(), project=project)
    assert len([w for w in from_folder.start_warnings() if "is not loaded" in w]) == 2
    assert inline.start_warnings() == []  # steps built in code: the folder is not theirs
