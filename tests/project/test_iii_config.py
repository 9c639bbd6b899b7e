"""Motia's iii-config.yaml: read with the same meaning as motet.toml's queue tables, layered
under motet.toml key by key, every key motet does not use said once, and bad files named by
file, line and key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from motet._envelope import QueueOptions
from motet._errors import ProjectConfigError
from motet.project import assemble_config, resolve_queue_options, start_report
from motet.steps._model import QueueOverrides, Step


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


SEEDS_FORM = """
    queues:
      message.sent:
        max_retries: 3
        retry_delay: 5000
        concurrency: 5
        dead_letter_queue: message.failed
      process-order:
        strategy: fifo
        maxRetries: 2
        retryDelay: 1000
      send-email:
        strategy: priority
        maxConcurrency: 10
    """


def options(root: Path, topic: str, **kwargs: object) -> QueueOptions:
    return resolve_queue_options(
        assemble_config(root, environ={}, **kwargs), topic, QueueOverrides()
    )


def test_the_seeds_queues_mean_what_motet_toml_queues_mean(tmp_path: Path) -> None:
    write(tmp_path, "iii-config.yaml", SEEDS_FORM)
    sent = options(tmp_path, "message.sent")
    assert (sent.max_retries, sent.retry_delay, sent.concurrency) == (3, 5000, 5)
    assert sent.dead_letter_queue == "message.failed"
    order = options(tmp_path, "process-order")
    assert (order.strategy, order.max_retries, order.retry_delay) == ("fifo", 2, 1000)
    email = options(tmp_path, "send-email")
    assert (email.strategy, email.concurrency) == ("priority", 10)
    # The same file as motet.toml gives the same options.
    toml = tmp_path / "toml"
    toml.mkdir()
    write(
        toml,
        "motet.toml",
        """
        [queues."message.sent"]
        max_retries = 3
        retry_delay = 5000
        concurrency = 5
        dead_letter_queue = "message.failed"
        """,
    )
    assert options(toml, "message.sent") == sent


def test_the_iii_engine_form_with_a_default_queue_and_env_values(tmp_path: Path) -> None:
    write(
        tmp_path,
        "iii-config.yaml",
        """
        port: ${III_PORT:49134}
        modules:
          - class: modules::api::RestApiModule
            config:
              port: 3111
          - class: modules::queue::QueueModule
            config:
              queue_configs:
                default:
                  max_retries: ${MAX_RETRIES:5}
                  concurrency: 5
                  type: standard
                  backoff_ms: 1000
                payment:
                  type: fifo
                  backoff_ms: 2000
                  backoffType: fixed
                  message_group_field: transaction_id
              adapter:
                class: modules::queue::BuiltinQueueAdapter
          - class: modules::shell::ExecModule
            config:
              exec:
                - uv run motia run --dir src
        """,
    )
    config = assemble_config(tmp_path, environ={"MAX_RETRIES": "7"})
    anything = resolve_queue_options(config, "anything", QueueOverrides())
    assert (anything.max_retries, anything.concurrency, anything.retry_delay) == (7, 5, 1000)
    payment = resolve_queue_options(config, "payment", QueueOverrides())
    assert payment.strategy == "fifo" and payment.retry_delay == 2000
    assert payment.max_retry_delay == 2000  # fixed: every retry after the same delay
    assert payment.max_retries == 7  # from the default queue
    assert config.steps == "src"  # the folder `motia run --dir` names
    assert config.handlers == "asyncio"
    report = start_report(config, [])
    unused = [line for line in report if line.startswith("not used: ")]
    # One line each: the engine port, the REST module, the queue adapter, the group field,
    # the exec module.
    assert len(unused) == 5, unused
    assert any("line 1: port" in line for line in unused)
    assert any(
        "modules[0] (modules::api::RestApiModule)" in line and "3000" in line for line in unused
    )
    assert any("message_group_field" in line and "messageGroupId" in line for line in unused)
    assert any("modules[1].config.adapter" in line for line in unused)
    assert any("'src'" in line for line in report)


def test_a_motia_project_defaults_to_asyncio_handlers_unless_told(tmp_path: Path) -> None:
    assert assemble_config(tmp_path, environ={}).handlers == "trio"
    write(tmp_path, "iii-config.yaml", "queues: {}\n")
    config = assemble_config(tmp_path, environ={})
    assert config.handlers == "asyncio"
    assert "iii-config.yaml" in config.origin("handlers")
    assert assemble_config(tmp_path, environ={"MOTET_HANDLERS": "trio"}).handlers == "trio"
    write(tmp_path, "motet.toml", 'handlers = "trio"\n')
    config = assemble_config(tmp_path, environ={})
    assert config.handlers == "trio"
    assert any(
        "handlers: motet.toml's 'trio' wins over 'asyncio'" in line for line in config.report
    )


def test_both_files_motet_toml_wins_per_key_and_says_so(tmp_path: Path) -> None:
    write(tmp_path, "iii-config.yaml", SEEDS_FORM)
    write(
        tmp_path,
        "motet.toml",
        """
        backend = "memory"
        [queues."message.sent"]
        max_retries = 9
        """,
    )
    config = assemble_config(tmp_path, environ={})
    sent = resolve_queue_options(config, "message.sent", QueueOverrides())
    assert sent.max_retries == 9  # motet.toml's
    assert sent.retry_delay == 5000 and sent.concurrency == 5  # iii-config.yaml's, not overridden
    assert config.backend == "memory"
    report = start_report(config, [])
    assert any("motet.toml wins" in line for line in report)
    assert any(
        "queues.'message.sent'.max_retries: motet.toml's 9 wins over 3" in line for line in report
    )


def test_config_file_reads_that_file_alone(tmp_path: Path) -> None:
    write(tmp_path, "iii-config.yaml", SEEDS_FORM)
    write(tmp_path, "motet.toml", 'backend = "memory"\n')
    other = write(tmp_path, "prod.yaml", "queues:\n  message.sent:\n    max_retries: 1\n")
    config = assemble_config(tmp_path, environ={}, config_file=other)
    assert resolve_queue_options(config, "message.sent", QueueOverrides()).max_retries == 1
    assert config.backend == "sqlite"  # motet.toml was not read
    assert any(f"{other} (from argument config_file; a Motia" in line for line in config.report)
    toml = write(tmp_path, "other.toml", "port = 4001\n")
    config = assemble_config(tmp_path, environ={"MOTET_CONFIG": str(toml)})
    assert config.port == 4001 and config.handlers == "trio"
    assert any("(from MOTET_CONFIG)" in line for line in config.report)
    with pytest.raises(ProjectConfigError, match="no such file"):
        assemble_config(tmp_path, environ={}, config_file=tmp_path / "missing.yaml")
    with pytest.raises(ProjectConfigError, match=r"expected a \.yaml/\.yml file"):
        assemble_config(tmp_path, environ={}, config_file=write(tmp_path, "x.json", "{}"))


def test_a_plain_config_yaml_is_not_taken_for_motias(tmp_path: Path) -> None:
    write(tmp_path, "config.yaml", "queues:\n  a:\n    max_retries: 1\n")
    assert assemble_config(tmp_path, environ={}).handlers == "trio"
    write(tmp_path, "config.yaml", "modules:\n  - class: modules::queue::QueueModule\n")
    assert assemble_config(tmp_path, environ={}).handlers == "asyncio"
    write(tmp_path, "iii-config.yaml", "queues: {}\n")
    config = assemble_config(tmp_path, environ={})
    assert (
        config.report[0]
        == "config: iii-config.yaml (a Motia project: async handlers run on asyncio)"
    )
    assert config.report[-1] == (
        "not used: config.yaml (only iii-config.yaml is read; `-c config.yaml` reads it instead)"
    )


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("queues:\n  a:\n    maxRetries: three\n", 3, "queues.a.maxRetries", "expected an integer"),
        ("queues:\n  a:\n    strategy: lifo\n", 3, "queues.a.strategy", "one of"),
        ("queues:\n  a:\n    concurrency: 0\n", 3, "queues.a.concurrency", ">= 1"),
        ("queues:\n  a.b:\n    retry_delay: -1\n", 3, 'queues."a.b".retry_delay', ">= 0"),
        ("queues:\n  a: [1, 2]\n", 2, "queues.a", "expected queue options"),
        ("queues: 5\n", 1, "queues", "expected topics"),
        (
            "queues:\n  a:\n    maxRetries: 1\n    max_retries: 2\n",
            4,
            "queues.a.max_retries",
            "twice",
        ),
        ("queues:\n  a: {}\n  a: {}\n", 3, "queues.a", "given twice"),
        ("modules: {a: 1}\n", 1, "modules", "expected a list"),
        ("queues:\n  a:\n    maxRetries: ${NOPE}\n", 3, "queues.a.maxRetries", "NOPE"),
        ("- 1\n- 2\n", 1, None, "expected a mapping"),
    ],
)
def test_wrong_types_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, field: str | None, message: str
) -> None:
    file = write(tmp_path, "iii-config.yaml", text)
    with pytest.raises(ProjectConfigError, match=message) as info:
        assemble_config(tmp_path, environ={})
    assert info.value.file == file and info.value.line == line and info.value.field == field
    assert f"iii-config.yaml, line {line}" in str(info.value)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "iii-config.yaml", "queues:\n  a:\n    maxRetries: 3\n   bad: [\n")
    with pytest.raises(ProjectConfigError, match="not valid YAML") as info:
        assemble_config(tmp_path, environ={})
    assert info.value.line is not None and info.value.line >= 4
    write(tmp_path, "iii-config.yaml", "queues:\n\ta: 1\n")
    with pytest.raises(ProjectConfigError, match=r"line 2.*not valid YAML"):
        assemble_config(tmp_path, environ={})


def test_an_empty_file_is_a_motia_project_with_nothing_set(tmp_path: Path) -> None:
    write(tmp_path, "iii-config.yaml", "# nothing yet\n")
    config = assemble_config(tmp_path, environ={})
    assert config.handlers == "asyncio" and config.queues == {}


def test_the_start_report_lists_each_steps_unhonoured_line_once(tmp_path: Path) -> None:
    write(tmp_path, "iii-config.yaml", "queues: {}\nextra: 1\n")
    config = assemble_config(tmp_path, environ={})
    step = Step(
        name="SendEmail",
        triggers=(),
        handler=lambda: None,
        file=tmp_path / "send_email_step.py",
        unhonoured=("includeFiles ['a.txt'] is not used: motet loads files in place",),
    )
    report = start_report(config, [step])
    assert report[0].startswith("config: ")
    assert "not used: iii-config.yaml line 2: extra is not used: not a setting motet has" in report
    assert report[-1] == (
        "not used: step 'SendEmail' (send_email_step.py): "
        "includeFiles ['a.txt'] is not used: motet loads files in place"
    )


def test_importing_motet_does_not_import_yaml() -> None:
    probe = "import sys, motet, motet.project, motet.cli; print('yaml' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_motia_1_project_without_steps_folder_loads_src(tmp_path: Path) -> None:
    write(tmp_path, "iii-config.yaml", "queues: {}\n")
    (tmp_path / "src").mkdir()
    config = assemble_config(tmp_path, environ={})
    assert config.steps == "src"
    assert any("'src'" in line for line in config.report)
    (tmp_path / "steps").mkdir()
    assert assemble_config(tmp_path, environ={}).steps == "steps"
    write(tmp_path, "motet.toml", 'steps = "src"\n')
    assert assemble_config(tmp_path, environ={}).steps == "src"


async def test_open_runtime_logs_the_report_and_returns_it(tmp_path: Path) -> None:
    import motet
    from motet._logging import LogRecord
    from motet._runtime import RuntimeOptions

    write(tmp_path, "iii-config.yaml", "queues:\n  jobs:\n    retryDelay: 10\nengine: iii\n")

    async def handler(input: object, ctx: object) -> None:
        pass

    step = Step(
        name="Job",
        triggers=(motet.queue("jobs"),),
        handler=handler,
        unhonoured=("infrastructure is not used",),
    )

    class Seen(motet.Observer):
        lines: list[str] = []

        def on_log(self, record: LogRecord) -> None:
            self.lines.append(record.message)

    seen = Seen()
    options = RuntimeOptions(log_sink=False)
    async with motet.open_runtime([step], root=tmp_path, observers=[seen], options=options) as rt:
        report = rt.start_report()
        assert rt.subscriptions[0].options.retry_delay == 10
    assert report == [
        "config: iii-config.yaml (a Motia project: async handlers run on asyncio)",
        "not used: iii-config.yaml line 4: engine is not used: not a setting motet has",
        "not used: step 'Job': infrastructure is not used",
    ]
    assert [line for line in seen.lines if line in report] == report  # each logged once


def test_handlers_is_trio_or_asyncio_wherever_it_is_set(tmp_path: Path) -> None:
    write(tmp_path, "motet.toml", 'handlers = "gevent"\n')
    with pytest.raises(ProjectConfigError, match=r"field 'handlers': expected one of"):
        assemble_config(tmp_path, environ={})
    write(tmp_path, "motet.toml", 'handlers = "asyncio"\n')
    assert assemble_config(tmp_path, environ={}).handlers == "asyncio"
    with pytest.raises(ProjectConfigError, match="MOTET_HANDLERS"):
        assemble_config(tmp_path, environ={"MOTET_HANDLERS": "threads"})
    assert assemble_config(tmp_path, environ={}, handlers="trio").handlers == "trio"
