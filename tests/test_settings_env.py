"""Settings from the environment: an empty or blank variable is unset (every setting alike), and a value that
does not fit is one ConfigError line naming the setting and its variable (the CLI prints it as ``error:``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli

from ragdeck.console.settings import Settings, default_data_dir
from ragdeck.errors import ConfigError


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_variables_are_unset_for_every_setting(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, blank: str
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    defaults = Settings(data_dir=default_data_dir())
    tables = {"policies", "roles", "llm_prices"}  # JSON in the environment: blank is unset only when empty
    for name in Settings.model_fields:
        if blank == "" or name not in tables:
            monkeypatch.setenv(f"RAGDECK_{name.upper()}", blank)
    for name in ("QDRANT_URL", "TEI_URL", "LLM_BASE_URL", "LLM_API_KEY", "REDIS_URL", "JUDGE_BASE_URL"):
        monkeypatch.setenv(name, blank)
    monkeypatch.setenv("RAGDECK_CONFIG", blank)
    settings = Settings()  # no ConfigError: nothing was set
    assert settings.data_dir == tmp_path / "xdg" / "ragdeck"  # never the working directory
    assert settings.model_dump() == defaults.model_dump()


def test_blank_values_in_the_toml_file_and_arguments_are_unset_too(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "ragdeck.toml").write_text('alias = ""\nembed_device = " "\ntop_k = 7\n')
    settings = Settings(eval_sets_dir="")
    assert (settings.alias, settings.embed_device, settings.top_k) == ("rag_chunks", "cpu", 7)
    assert settings.eval_sets_dir == Path("eval_sets")


def test_a_bad_value_names_the_setting_and_its_variable(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAGDECK_TOP_K", "many")
    monkeypatch.setenv("RAGDECK_CHUNK_OVERLAP", "0.9")
    with pytest.raises(ConfigError) as info:
        Settings()
    message = str(info.value)
    assert "\n" not in message
    assert (
        "setting top_k (RAGDECK_TOP_K): Input should be a valid integer" in message
        and "got 'many'" in message
    )
    assert "setting chunk_overlap (RAGDECK_CHUNK_OVERLAP): Input should be less than 0.5" in message
    assert message.endswith("fix it in the environment, .env or the TOML settings file")


def test_a_table_setting_that_is_not_json_names_its_variable(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAGDECK_POLICIES", "{A: fast}")
    expected = r"^setting policies \(RAGDECK_POLICIES\): not valid JSON \(Expecting"
    with pytest.raises(ConfigError, match=expected):
        Settings()


def test_the_cli_prints_a_bad_setting_as_one_error_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("RAGDECK_HNSW_M", "1")
    code, _out, err = run_cli(monkeypatch, capsys, "collections")
    assert_one_line_error(code, err, "setting hnsw_m (RAGDECK_HNSW_M)", "greater than or equal to 2")
    monkeypatch.delenv("RAGDECK_HNSW_M")
    monkeypatch.setenv("RAGDECK_DATA_DIR", "")
    monkeypatch.setenv("XDG_DATA_HOME", str(data_dir.parent / "xdg"))
    code, _out, err = run_cli(monkeypatch, capsys, "collections")
    assert code == 0, err
    assert (data_dir.parent / "xdg" / "ragdeck" / "qdrant").is_dir()
    assert not (Path.cwd() / "qdrant").exists()  # the old behaviour: the working directory


def test_the_console_shows_a_bad_setting_as_one_red_box(data_dir: Path, monkeypatch) -> None:
    from pages import open_page

    monkeypatch.setenv("RAGDECK_TOP_K", "many")
    at = open_page()
    at.run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [
        "setting top_k (RAGDECK_TOP_K): Input should be a valid integer, unable to parse string as an "
        "integer, got 'many'; fix it in the environment, .env or the TOML settings file"
    ]


@pytest.mark.parametrize(
    ("content", "needle"),
    [("top_k = [", "cannot be read (Invalid value"), ("a = " + "[" * 5000, "cannot be read (")],
)
def test_an_unreadable_settings_file_is_named(
    data_dir: Path, tmp_path: Path, monkeypatch, content: str, needle: str
) -> None:
    path = tmp_path / "conf.toml"
    path.write_text(content)
    monkeypatch.setenv("RAGDECK_CONFIG", str(path))
    with pytest.raises(ConfigError, match=rf"^settings file {path}: cannot be read") as info:
        Settings()
    assert needle in str(info.value) and "point RAGDECK_CONFIG at another file" in str(info.value)
