"""OpenAIChatModel against a real HTTP fake of the OpenAI chat API; price tables; the LLM settings; and
``ragdeck llm status`` against the fake."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai_fake import CHAT, MODELS, FakeOpenAI, run_fake_openai
from servers import free_port
from typer.testing import CliRunner

from ragdeck.cli.llm import app as llm_app
from ragdeck.console.answering.costs import Cost, Price, PriceTable, estimate_cost, is_local_model
from ragdeck.console.interfaces import ChatModel
from ragdeck.console.settings import Settings
from ragdeck.errors import ConfigError, InputError, ServiceUnavailable
from ragdeck.services.http import HttpError, RetryPolicy
from ragdeck.services.llm import OpenAIChatModel, openai_base_url
from ragdeck.services.types import ChatMessage, ChatResult

QUESTION = [
    ChatMessage("system", "Answer briefly."),
    ChatMessage("user", "what does the scrape interval control"),
]


class SleepLog:
    """A ``RetryPolicy.sleep`` that records waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def fast_policy(attempts: int = 3, sleep: SleepLog | None = None, **kwargs: float) -> RetryPolicy:
    return RetryPolicy(
        attempts=attempts, backoff_initial_s=0.01, backoff_max_s=0.04, sleep=sleep or SleepLog(), **kwargs
    )


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with run_fake_openai() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_fake(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").state.reset()


# ---------------------------------------------------------------- base URL


@pytest.mark.parametrize(
    "given",
    [
        "http://127.0.0.1:8088",
        "http://127.0.0.1:8088/",
        "http://127.0.0.1:8088/v1",
        " http://127.0.0.1:8088/v1/ ",
        "http://127.0.0.1:8088/v1/chat/completions",
        "http://127.0.0.1:8088/v1/models",
    ],
)
def test_base_url_is_normalised_to_the_v1_root(given: str) -> None:
    assert openai_base_url(given) == "http://127.0.0.1:8088/v1"


def test_base_url_keeps_a_path_prefix() -> None:
    assert openai_base_url("https://gw.example/llm/v1/") == "https://gw.example/llm/v1"
    assert openai_base_url("https://gw.example/llm") == "https://gw.example/llm/v1"


@pytest.mark.parametrize("bad", ["", "127.0.0.1:8088", "ftp://host/v1"])
def test_bad_base_url_is_config_error_naming_the_setting(bad: str) -> None:
    with pytest.raises(ConfigError, match="LLM_BASE_URL"):
        OpenAIChatModel(bad)


# ---------------------------------------------------------------- chat


def test_chat_returns_text_usage_finish_reason_and_latency(fake: FakeOpenAI) -> None:
    with OpenAIChatModel(fake.url, model="fake-chat-2", retry=fast_policy()) as llm:
        result = llm.chat(QUESTION, max_tokens=4, temperature=0.3)
        assert isinstance(llm, ChatModel)
        assert llm.mode == "server" and llm.model_name == "fake-chat-2"
    assert isinstance(result, ChatResult)
    assert result.text == "echo: what does the"
    assert result.model == "fake-chat-2"
    assert result.prompt_tokens == 3 + 7  # words + 1 per message, as the fake counts
    assert result.completion_tokens == 4 and result.total_tokens == 14
    assert result.finish_reason == "length"
    assert result.latency_ms > 0
    sent = fake.state.last(CHAT).body
    assert sent == {
        "model": "fake-chat-2",
        "messages": [{"role": m.role, "content": m.content} for m in QUESTION],
        "max_tokens": 4,
        "temperature": 0.3,
        "stream": False,
    }


def test_chat_accepts_the_origin_without_v1(fake: FakeOpenAI) -> None:
    with OpenAIChatModel(fake.origin, model="fake-chat-1") as llm:
        result = llm.chat([ChatMessage("user", "hi")], max_tokens=16)
    assert result.text == "echo: hi" and result.finish_reason == "stop"
    assert llm.base_url == fake.url


def test_model_unset_asks_the_server_once_for_its_first_model(fake: FakeOpenAI) -> None:
    with OpenAIChatModel(fake.url, retry=fast_policy()) as llm:
        first = llm.chat([ChatMessage("user", "one")], max_tokens=8)
        second = llm.chat([ChatMessage("user", "two")], max_tokens=8)
        assert llm.model_name == "fake-chat-1"
    assert first.model == second.model == "fake-chat-1"
    assert fake.state.last(CHAT).body["model"] == "fake-chat-1"
    assert fake.state.count(MODELS) == 1


def test_models_lists_served_ids(fake: FakeOpenAI) -> None:
    with OpenAIChatModel(fake.url) as llm:
        assert llm.models() == ["fake-chat-1", "fake-chat-2"]


def test_missing_usage_counts_zero_tokens(fake: FakeOpenAI) -> None:
    fake.state.malformed = "no_usage"
    with OpenAIChatModel(fake.url, model="fake-chat-1") as llm:
        result = llm.chat([ChatMessage("user", "hello there")], max_tokens=8)
    assert result.text == "echo: hello there"
    assert (result.prompt_tokens, result.completion_tokens) == (0, 0)


def test_empty_messages_and_bad_max_tokens_are_input_errors(fake: FakeOpenAI) -> None:
    with OpenAIChatModel(fake.url, model="fake-chat-1") as llm:
        with pytest.raises(InputError, match="at least one message"):
            llm.chat([])
        with pytest.raises(InputError, match="RAGDECK_LLM_MAX_TOKENS"):
            llm.chat(QUESTION, max_tokens=0)
    assert fake.state.count(CHAT) == 0


# ---------------------------------------------------------------- auth


def test_bearer_key_is_sent_and_accepted(fake: FakeOpenAI) -> None:
    fake.state.api_key = "sk-test-123"
    with OpenAIChatModel(fake.url, model="fake-chat-1", api_key="sk-test-123") as llm:
        assert llm.chat(QUESTION, max_tokens=2).text == "echo: what"
    assert fake.state.last(CHAT).authorization == "Bearer sk-test-123"


def test_missing_key_is_401_telling_to_set_llm_api_key(fake: FakeOpenAI) -> None:
    fake.state.api_key = "sk-test-123"
    with (
        OpenAIChatModel(fake.url, model="fake-chat-1", retry=fast_policy()) as llm,
        pytest.raises(HttpError) as caught,
    ):
        llm.chat(QUESTION, max_tokens=2)
    assert caught.value.status == 401
    message = str(caught.value)
    assert "LLM_API_KEY" in message and "Incorrect API key provided" in message
    assert f"{fake.url}/chat/completions" in message
    assert fake.state.count(CHAT) == 1  # 401 is not retried
    assert fake.state.last(CHAT).authorization is None


def test_key_is_set_on_an_injected_client(fake: FakeOpenAI) -> None:
    fake.state.api_key = "k2"
    with httpx.Client(timeout=5) as client:
        llm = OpenAIChatModel(fake.url, model="fake-chat-1", api_key="k2", client=client)
        llm.chat(QUESTION, max_tokens=2)
        llm.close()  # not ours: stays open
        assert not client.is_closed
    assert fake.state.last(CHAT).authorization == "Bearer k2"


# ---------------------------------------------------------------- retries and errors


def test_429_with_retry_after_is_honoured_then_succeeds(fake: FakeOpenAI) -> None:
    sleeps = SleepLog()
    fake.state.fail_next(1, 429, retry_after="2")
    fake.state.fail_next(1, 503, retry_after="120")  # capped by retry_after_max_s
    policy = fast_policy(attempts=3, sleep=sleeps, retry_after_max_s=5.0)
    with OpenAIChatModel(fake.url, model="fake-chat-1", retry=policy) as llm:
        result = llm.chat(QUESTION, max_tokens=3)
    assert result.text == "echo: what does"
    assert sleeps.waits == [2.0, 5.0]
    assert fake.state.count(CHAT) == 3


def test_500s_back_off_then_succeed(fake: FakeOpenAI) -> None:
    sleeps = SleepLog()
    fake.state.fail_next(2, 500)
    with OpenAIChatModel(fake.url, model="fake-chat-1", retry=fast_policy(3, sleeps)) as llm:
        assert llm.chat(QUESTION, max_tokens=1).completion_tokens == 1
    assert sleeps.waits == [0.01, 0.02]
    assert fake.state.count(CHAT) == 3


def test_real_wait_honours_retry_after(fake: FakeOpenAI) -> None:
    fake.state.fail_next(1, 429, retry_after="0.3")
    start = time.monotonic()
    with OpenAIChatModel(fake.url, model="fake-chat-1", retry=RetryPolicy(attempts=2)) as llm:
        llm.chat(QUESTION, max_tokens=1)
    assert time.monotonic() - start >= 0.3


def test_5xx_past_the_retry_budget_names_url_status_and_what_to_do(fake: FakeOpenAI) -> None:
    fake.state.fail_next(5, 502)
    with (
        OpenAIChatModel(fake.url, model="fake-chat-1", retry=fast_policy(attempts=3)) as llm,
        pytest.raises(HttpError) as caught,
    ):
        llm.chat(QUESTION)
    message = str(caught.value)
    assert caught.value.status == 502 and caught.value.attempts == 3
    assert f"{fake.url}/chat/completions" in message and "3 attempts" in message
    assert "injected failure 502" in message and "read its logs" in message
    assert "TEI" not in message
    assert fake.state.count(CHAT) == 3


def test_unknown_model_is_404_naming_the_model_and_setting(fake: FakeOpenAI) -> None:
    with (
        OpenAIChatModel(fake.url, model="gpt-nope", retry=fast_policy()) as llm,
        pytest.raises(HttpError) as caught,
    ):
        llm.chat(QUESTION)
    message = str(caught.value)
    assert caught.value.status == 404
    assert "The model `gpt-nope` does not exist" in message  # the server's own words, not a dict repr
    assert "RAGDECK_LLM_MODEL" in message and f"{fake.url}/models" in message


def test_read_timeout_is_retried_then_says_what_to_raise(fake: FakeOpenAI) -> None:
    fake.state.delay_s = 1.0
    start = time.monotonic()
    with (
        OpenAIChatModel(fake.url, model="fake-chat-1", timeout_s=0.25, retry=fast_policy(2)) as llm,
        pytest.raises(ServiceUnavailable) as caught,
    ):
        llm.chat(QUESTION)
    assert time.monotonic() - start < 2.0  # two attempts of 0.25 s, not the server's 1 s each
    assert "RAGDECK_LLM_TIMEOUT_S" in str(caught.value) and "0.25 s" in str(caught.value)
    assert fake.state.count(CHAT) == 2


@pytest.mark.parametrize("mode", ["no_choices", "empty_choices"])
def test_answer_without_choices_names_the_url(fake: FakeOpenAI, mode: str) -> None:
    fake.state.malformed = mode
    with (
        OpenAIChatModel(fake.url, model="fake-chat-1", retry=fast_policy()) as llm,
        pytest.raises(ServiceUnavailable, match="without choices") as caught,
    ):
        llm.chat(QUESTION)
    assert f"{fake.url}/chat/completions" in str(caught.value)
    assert "LLM_BASE_URL" in str(caught.value)
    assert fake.state.count(CHAT) == 1  # a 200 with a bad body is not retried


def test_answer_that_is_not_json(fake: FakeOpenAI) -> None:
    fake.state.malformed = "not_json"
    with (
        OpenAIChatModel(fake.url, model="fake-chat-1", retry=fast_policy()) as llm,
        pytest.raises(ServiceUnavailable, match="not JSON"),
    ):
        llm.chat(QUESTION)


def test_nothing_listening_says_start_ragdeck_llm_serve() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with (
        OpenAIChatModel(url, model="m", retry=fast_policy(2)) as llm,
        pytest.raises(ServiceUnavailable) as caught,
    ):
        llm.chat(QUESTION)
    message = str(caught.value)
    assert url in message and "ragdeck llm serve" in message and "LLM_BASE_URL" in message


# ---------------------------------------------------------------- health


def test_health_ok_reports_model_and_endpoint(fake: FakeOpenAI) -> None:
    with OpenAIChatModel(fake.url) as llm:
        health = llm.health()
    assert health.ok and health.component == "llm" and health.mode == "server"
    assert health.model == "fake-chat-1" and health.endpoint == fake.url and health.version is None
    assert "fake-chat-2" in health.detail


def test_health_flags_a_configured_model_the_server_does_not_serve(fake: FakeOpenAI) -> None:
    with OpenAIChatModel(fake.url, model="llama-70b") as llm:
        health = llm.health()
    assert not health.ok and health.model == "llama-70b"
    assert "RAGDECK_LLM_MODEL" in health.detail and "fake-chat-1" in health.detail


def test_health_never_raises_and_is_not_retried(fake: FakeOpenAI) -> None:
    fake.state.fail_next(3, 503, paths=(MODELS,))
    with OpenAIChatModel(fake.url, retry=fast_policy(5)) as llm:
        health = llm.health()
    assert not health.ok and "503" in health.detail
    assert fake.state.count(MODELS) == 1

    down = f"http://127.0.0.1:{free_port()}"
    with OpenAIChatModel(down, model="m") as llm:
        health = llm.health()
        assert llm.model_name == "m"
    assert not health.ok and "ragdeck llm serve" in health.detail and health.model == "m"


def test_model_name_while_the_server_is_down_does_not_raise() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with OpenAIChatModel(url) as llm:
        assert llm.model_name == f"LLM at {url}"


def test_health_with_wrong_key(fake: FakeOpenAI) -> None:
    fake.state.api_key = "right"
    with OpenAIChatModel(fake.url, api_key="wrong") as llm:
        health = llm.health()
    assert not health.ok and "401" in health.detail and "LLM_API_KEY" in health.detail


# ---------------------------------------------------------------- costs


def test_price_table_lookup_order() -> None:
    table = PriceTable.from_mapping(
        {
            "gpt-4o-mini": {"prompt": 0.15, "completion": 0.6},
            "Qwen2.5-1.5B-Instruct": {"prompt": 0.02, "completion": 0.05},
        }
    )
    assert table.lookup("gpt-4o-mini") == (Price(0.15, 0.6), True)
    assert table.lookup("GPT-4o-Mini") == (Price(0.15, 0.6), True)
    assert table.lookup("Qwen/Qwen2.5-1.5B-Instruct") == (Price(0.02, 0.05), True)
    assert table.lookup("mystery-model") == (Price(0.0, 0.0), False)
    assert table.lookup("mystery-model", local=True) == (Price(0.0, 0.0), True)
    assert len(table) == 2


def test_default_entry_prices_unknown_models_but_not_local_ones() -> None:
    table = PriceTable.from_mapping({"default": {"prompt": 1.0, "completion": 2.0}})
    assert table.lookup("anything") == (Price(1.0, 2.0), True)
    assert table.lookup("qwen2.5-coder-1.5b-instruct-q4_k_m") == (Price(), True)
    assert table.lookup("/models/tiny.gguf") == (Price(), True)
    priced_local = PriceTable.from_mapping({"tiny.gguf": {"prompt": 0.5}})
    assert priced_local.lookup("tiny.gguf") == (Price(0.5, 0.0), True)  # an explicit entry wins


def test_estimate_cost_formula() -> None:
    table = PriceTable({"m": Price(prompt=0.5, completion=1.5)})
    result = ChatResult(text="x", model="m", prompt_tokens=2_000, completion_tokens=400)
    cost = estimate_cost(result, table=table)
    assert cost.usd == pytest.approx(2_000 * 0.5 / 1e6 + 400 * 1.5 / 1e6)
    assert cost.known and cost.model == "m" and (cost.prompt_tokens, cost.completion_tokens) == (2_000, 400)
    assert estimate_cost((1_000_000, 1_000_000), "m", table).usd == pytest.approx(2.0)
    assert estimate_cost((-5, 10), "m", table).prompt_tokens == 0
    unknown = estimate_cost(result, "other", table)
    assert unknown == Cost(usd=0.0, known=False, model="other", prompt_tokens=2_000, completion_tokens=400)
    assert estimate_cost(result, "other").known is False  # no table at all


def test_costs_add_up_and_unknown_is_contagious() -> None:
    table = PriceTable({"m": Price(1.0, 1.0)})
    a = estimate_cost((500_000, 0), "m", table)
    b = estimate_cost((0, 250_000), "m", table)
    total = a + b
    assert total.usd == pytest.approx(0.75) and total.known and total.model == "m"
    mixed = total + estimate_cost((10, 10), "x", table)
    assert not mixed.known and mixed.model == "mixed" and mixed.prompt_tokens == 500_010


def test_is_local_model() -> None:
    assert is_local_model("qwen2.5-coder-1.5b-instruct-q4_k_m")
    assert is_local_model("/data/models/Foo.GGUF")
    assert not is_local_model("gpt-4o-mini")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"m": 3}, "must be a table"),
        ({"m": {"prompt": "cheap"}}, r"prompt must be a number"),
        ({"m": {"completion": -1}}, r"completion must be >= 0"),
        ({"m": {"input": 1}}, "unknown keys"),
    ],
)
def test_bad_price_entries_are_config_errors_naming_the_entry(raw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        PriceTable.from_mapping(raw)
    assert 'llm_prices."m"' in str(caught.value)


# ---------------------------------------------------------------- settings


def test_llm_settings_defaults(data_dir: Path) -> None:
    settings = Settings()
    assert settings.llm_model is None and settings.llm_api_key is None
    assert settings.llm_timeout_s == 60 and settings.llm_max_tokens == 384
    assert settings.llm_port == 8088 and settings.llm_ctx == 4096 and settings.llm_threads is None
    assert settings.llm_gguf_path is None and settings.llm_prices == {}


def test_llm_settings_from_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9000/v1/")
    monkeypatch.setenv("LLM_API_KEY", "sk-env")
    monkeypatch.setenv("RAGDECK_LLM_MODEL", "  ")
    monkeypatch.setenv("RAGDECK_LLM_PORT", "9001")
    monkeypatch.setenv("RAGDECK_LLM_PRICES", json.dumps({"gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}))
    settings = Settings()
    assert settings.llm_base_url == "http://127.0.0.1:9000/v1"
    assert settings.llm_api_key is not None and settings.llm_api_key.get_secret_value() == "sk-env"
    assert "sk-env" not in repr(settings)
    assert settings.llm_model is None  # blank means unset
    assert settings.llm_port == 9001
    table = PriceTable.from_settings(settings)
    assert table.lookup("gpt-4o-mini") == (Price(0.15, 0.6), True)


def test_llm_prices_from_toml(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ragdeck.toml"
    config.write_text(
        'llm_model = "Qwen/Qwen2.5-1.5B-Instruct"\n\n'
        '[llm_prices."Qwen/Qwen2.5-1.5B-Instruct"]\nprompt = 0.1\ncompletion = 0.4\n\n'
        "[llm_prices.default]\nprompt = 1\ncompletion = 2\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("RAGDECK_CONFIG", str(config))
    settings = Settings()
    assert settings.llm_model == "Qwen/Qwen2.5-1.5B-Instruct"
    table = PriceTable.from_settings(settings)
    cost = estimate_cost((1_000_000, 1_000_000), settings.llm_model, table)
    assert cost.usd == pytest.approx(0.5) and cost.known
    assert estimate_cost((1_000_000, 0), "someone-else", table).usd == pytest.approx(1.0)


def test_llm_settings_reject_nonsense(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragdeck.errors import ConfigError

    monkeypatch.setenv("RAGDECK_LLM_PORT", "70000")
    with pytest.raises(ConfigError, match=r"setting llm_port \(RAGDECK_LLM_PORT\): .* got '70000'"):
        Settings()


# ---------------------------------------------------------------- ragdeck llm status


def test_cli_status_against_llm_base_url(fake: FakeOpenAI, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("LLM_BASE_URL", fake.origin)
    result = CliRunner().invoke(llm_app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    health = json.loads(result.output)
    assert health["ok"] is True and health["model"] == "fake-chat-1" and health["endpoint"] == fake.url

    result = CliRunner().invoke(llm_app, ["status"])
    assert result.exit_code == 0, result.output
    assert "fake-chat-1" in result.output and "LLM_BASE_URL" in result.output


def test_cli_status_when_nothing_answers(data_dir: Path, monkeypatch) -> None:
    port = free_port()
    monkeypatch.setenv("RAGDECK_LLM_PORT", str(port))
    result = CliRunner().invoke(llm_app, ["status"])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}/v1" in result.output and "ragdeck llm serve" in result.output
    assert "LLM_BASE_URL unset" in result.output


def test_cli_serve_with_a_missing_model_file_is_config_error(data_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(llm_app, ["serve", "--model", str(tmp_path / "nope.gguf")])
    assert isinstance(result.exception, ConfigError)
    assert "nope.gguf" in str(result.exception)


def test_connection_errors_name_the_setting_and_hide_credentials() -> None:
    from servers import free_port

    from ragdeck.errors import ServiceUnavailable
    from ragdeck.services.http import RetryPolicy
    from ragdeck.services.llm import OpenAIChatModel as Chat
    from ragdeck.services.types import ChatMessage as Message

    url = f"http://user:hunter2@127.0.0.1:{free_port()}/v1?token=t0ps3cret"
    for setting in ("LLM_BASE_URL", "JUDGE_BASE_URL"):
        with Chat(url, model="m", retry=RetryPolicy.no_retry(), setting=setting) as llm:
            with pytest.raises(ServiceUnavailable) as caught:
                llm.chat([Message("user", "hi")])
            health = llm.health()
        for text in (str(caught.value), health.detail, health.endpoint or ""):
            assert "hunter2" not in text and "t0ps3cret" not in text
        assert str(caught.value).startswith(f"llm ({setting}): could not connect")
        assert "//***@127.0.0.1" in str(caught.value)
