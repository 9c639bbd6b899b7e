"""Settings assembled in one place: defaults < motet.toml / [tool.motet] < MOTET_* < flags
or keyword arguments, each value checked and its origin named in errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from motet._errors import ProjectConfigError
from motet.gateway import GatewayOptions
from motet.gateway._options import gateway_options
from motet.project import ENV_VARS, ProjectConfig, assemble_config


def write_toml(root: Path, text: str) -> Path:
    path = root / "motet.toml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_each_layer_wins_over_the_one_below_for_the_keys_it_names(tmp_path: Path) -> None:
    file = write_toml(
        tmp_path,
        """
        backend = "memory"
        host = "0.0.0.0"
        port = 4000
        log_level = "warn"
        """,
    )
    env = {"MOTET_PORT": "5000", "MOTET_LOG_LEVEL": "debug", "MOTET_TOKEN": "t0k"}
    config = assemble_config(tmp_path, environ=env, flags=True, log_level="error", port=None)
    assert config.backend == "memory" and config.host == "0.0.0.0"  # the file
    assert config.port == 5000 and config.token == "t0k"  # the environment over the file
    assert config.log_level == "error"  # the flag over both
    assert config.log_format == "pretty" and config.steps == "steps"  # defaults
    assert config.origin("backend") == str(file)
    assert config.origin("port") == "MOTET_PORT"
    assert config.origin("log_level") == "--log-level"
    assert config.origin("log_format") == "the default"


def test_keyword_arguments_are_the_top_layer_too(tmp_path: Path) -> None:
    write_toml(tmp_path, 'backend = "sqlite"\n')
    config = assemble_config(tmp_path, environ={"MOTET_BACKEND": "redis://h:1/0"}, backend="memory")
    assert config.backend == "memory" and config.origin("backend") == "argument backend"


def test_an_entry_points_default_gives_way_to_every_layer(tmp_path: Path) -> None:
    memory = {"backend": "memory"}
    assert assemble_config(tmp_path, environ={}, defaults=memory).backend == "memory"
    assert assemble_config(tmp_path, environ={}).backend == "sqlite"
    env = {"MOTET_BACKEND": "sqlite"}
    assert assemble_config(tmp_path, environ=env, defaults=memory).backend == "sqlite"
    write_toml(tmp_path, 'backend = "sqlite:///x.db"\n')
    assert assemble_config(tmp_path, environ={}, defaults=memory).backend == "sqlite:///x.db"


def test_every_scalar_key_has_a_variable_and_blank_ones_are_unset(tmp_path: Path) -> None:
    assert ENV_VARS["backend"] == "MOTET_BACKEND" and ENV_VARS["port"] == "MOTET_PORT"
    assert ENV_VARS["log_format"] == "MOTET_LOG_FORMAT"
    assert ENV_VARS["max_json_depth"] == "MOTET_MAX_JSON_DEPTH"
    assert assemble_config(tmp_path, environ={"MOTET_PORT": "  "}) == ProjectConfig(root=tmp_path)


def test_gateway_limits_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    write_toml(tmp_path, "send_timeout = 2.5\nmax_json_depth = 16\nport = 0\n")
    env = {"MOTET_LINGER_MAX_BYTES": "1024", "MOTET_LINGER_TIMEOUT": "0.5"}
    options = gateway_options(assemble_config(tmp_path, environ=env))
    assert options == GatewayOptions(
        port=0, send_timeout=2.5, max_json_depth=16, linger_max_bytes=1024, linger_timeout=0.5
    )
    # Unset limits keep the gateway's own defaults.
    assert gateway_options(ProjectConfig()) == GatewayOptions()


@pytest.mark.parametrize(
    ("env", "field", "pattern"),
    [
        ({"MOTET_PORT": "http"}, "MOTET_PORT", "expected a whole number, got 'http'"),
        ({"MOTET_PORT": "70000"}, "MOTET_PORT", "port number 0-65535, got 70000"),
        ({"MOTET_LOG_FORMAT": "xml"}, "MOTET_LOG_FORMAT", "one of \\['pretty', 'json'\\]"),
        ({"MOTET_BACKEND": "postgres://db"}, "MOTET_BACKEND", "expected one of"),
        ({"MOTET_SEND_TIMEOUT": "0"}, "MOTET_SEND_TIMEOUT", "seconds > 0, got 0.0"),
        ({"MOTET_MAX_JSON_DEPTH": "1.5"}, "MOTET_MAX_JSON_DEPTH", "whole number, got '1.5'"),
        ({"MOTET_TIMEZONE": "Mars/Base"}, "MOTET_TIMEZONE", "unknown timezone"),
    ],
)
def test_a_bad_variable_is_named(
    tmp_path: Path, env: dict[str, str], field: str, pattern: str
) -> None:
    with pytest.raises(ProjectConfigError, match=pattern) as caught:
        assemble_config(tmp_path, environ=env)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"environment, field {field!r}")


def test_bad_file_values_are_still_named_by_file_and_field(tmp_path: Path) -> None:
    file = write_toml(tmp_path, "linger_timeout = -1\n")
    with pytest.raises(ProjectConfigError, match="seconds > 0") as caught:
        assemble_config(tmp_path, environ={})
    assert caught.value.file == file and caught.value.field == "linger_timeout"


def test_a_bad_flag_or_argument_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProjectConfigError, match="'--log-format'"):
        assemble_config(tmp_path, environ={}, flags=True, log_format="xml")
    with pytest.raises(ProjectConfigError, match="'port'"):
        assemble_config(tmp_path, environ={}, port=-1)
    with pytest.raises(TypeError, match="unknown setting 'prot'"):
        assemble_config(tmp_path, environ={}, prot=1)
