"""The answer cache and its key-value stores: in process (fake clock) and the real redis-server."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import pytest
import redis

from ragdeck.console.answering.cache import AnswerCache, cache_key, normalize_question
from ragdeck.console.answering.ports import KeyValueStore
from ragdeck.errors import ConfigError, InputError, ServiceUnavailable
from ragdeck.services.kv import MemoryKV, RedisKV
from ragdeck.services.redact import redact_url


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def closed_port_url() -> str:
    """A redis:// URL on a loopback port nobody listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


# ------------------------------------------------------------------ MemoryKV


def test_memory_kv_expires_keys_after_ttl() -> None:
    clock = FakeClock()
    kv = MemoryKV(clock=clock)
    kv.set("a", "1", ttl_s=10)
    kv.set("forever", "2")
    clock.advance(9.9)
    assert kv.get("a") == "1"
    clock.advance(0.1)
    assert kv.get("a") is None
    assert len(kv) == 1  # the expired key was dropped when read
    clock.advance(10_000)
    assert kv.get("forever") == "2"
    kv.set("a", "3", ttl_s=5)  # a rewrite restarts the clock
    clock.advance(4)
    assert kv.get("a") == "3"


def test_memory_kv_evicts_least_recently_used() -> None:
    kv = MemoryKV(max_entries=3)
    for key in "abc":
        kv.set(key, key.upper())
    assert kv.get("a") == "A"  # a is now the most recent; b the least
    kv.set("d", "D")
    assert len(kv) == 3
    assert kv.get("b") is None
    assert [kv.get(k) for k in "acd"] == ["A", "C", "D"]
    kv.set("c", "C2")  # rewriting refreshes too: order a, d, c
    kv.set("e", "E")
    assert kv.get("a") is None and kv.get("d") == "D" and kv.get("c") == "C2"


def test_memory_kv_is_thread_safe_and_bounded() -> None:
    kv = MemoryKV(max_entries=50)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(400):
                kv.set(f"{worker}:{i}", str(i), ttl_s=60)
                kv.get(f"{worker}:{i // 2}")
                if i % 7 == 0:
                    kv.delete(f"{worker}:{i - 1}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert 0 < len(kv) <= 50
    assert kv.get("0:0") is None  # long evicted
    for i in range(60):
        kv.set(f"after:{i}", "x")
    assert len(kv) == 50 and kv.get("after:9") is None and kv.get("after:10") == "x"


def test_memory_kv_delete_health_and_bad_arguments() -> None:
    kv = MemoryKV(max_entries=4)
    assert isinstance(kv, KeyValueStore) and kv.mode == "memory"
    kv.set("k", "v")
    kv.delete("k")
    kv.delete("never-there")
    assert kv.get("k") is None
    health = kv.health()
    assert health.ok and health.mode == "memory" and "4" in health.detail
    with pytest.raises(InputError, match="ttl_s"):
        kv.set("k", "v", ttl_s=0)
    with pytest.raises(InputError, match="max_entries"):
        MemoryKV(max_entries=0)


# ------------------------------------------------------------------ keys


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("What is TEI?", "what is tei"),
        ("  what   is\ttei ", "what is tei"),
        ('"What is TEI?!"', "what is tei"),
        ("«What is TEI»", "what is tei"),
        ("ＷＨＡＴ is ＴＥＩ", "what is tei"),  # full-width letters, NFKC
        ("Straße?", "strasse"),  # casefold, not lower
        ("What is p95 (ms)?", "what is p95 (ms)"),  # inner punctuation and brackets kept
        ("rate() vs irate()", "rate() vs irate()"),
        ("(What is TEI?)", "what is tei"),  # a bracket pair around everything goes
        ("[TEI] batching?", "[tei] batching"),
        ("(TEI) or (TGI)?", "(tei) or (tgi)"),
        ("?!", ""),
        ("", ""),
    ],
)
def test_normalize_question(raw: str, normalized: str) -> None:
    assert normalize_question(raw) == normalized


def test_cache_key_shape_and_what_it_depends_on() -> None:
    key = cache_key("A", "What is TEI?", "rag_chunks_v1")
    assert key.startswith("answer:") and len(key) == len("answer:") + 64
    int(key.removeprefix("answer:"), 16)
    assert cache_key("A", "  what is tei ", "rag_chunks_v1") == key
    assert cache_key("B", "What is TEI?", "rag_chunks_v1") != key
    assert cache_key("A", "What is TEI?", "rag_chunks_v2") != key
    assert cache_key("A", "What is TGI?", "rag_chunks_v1") != key
    # the parts cannot run into each other
    assert cache_key("A b", "c", "v") != cache_key("A", "b c", "v")


# ------------------------------------------------------------------ AnswerCache (in process)


ANSWER = {"text": "TEI serves embedding models [1].", "no_answer": False, "citations": [{"n": 1}]}


def test_answer_cache_round_trip_and_ttl_with_fake_clock() -> None:
    clock = FakeClock()
    cache = AnswerCache(MemoryKV(clock=clock), ttl_s=30)
    assert cache.mode == "memory"
    assert cache.get("A", "What is TEI?", "v1") is None
    cache.put("A", "What is TEI?", "v1", ANSWER)
    assert cache.get("A", "  what is tei ", "v1") == ANSWER
    assert cache.get("B", "What is TEI?", "v1") is None
    assert cache.get("A", "What is TEI?", "v2") is None  # an alias swap changes the index version
    clock.advance(29)
    assert cache.get("A", "what is tei", "v1") == ANSWER
    clock.advance(1)
    assert cache.get("A", "what is tei", "v1") is None
    cache.put("A", "q", "v1", ANSWER)
    cache.invalidate("A", "q", "v1")
    assert cache.get("A", "q", "v1") is None


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', "null", ""])
def test_corrupt_cached_value_is_a_miss_and_is_deleted(raw: str, caplog: pytest.LogCaptureFixture) -> None:
    kv = MemoryKV()
    cache = AnswerCache(kv, ttl_s=60)
    key = cache_key("A", "q", "v1")
    kv.set(key, raw)
    with caplog.at_level(logging.WARNING, logger="ragdeck.console.answering.cache"):
        assert cache.get("A", "q", "v1") is None
    assert kv.get(key) is None
    assert "not a JSON object" in caplog.text


def test_put_stores_compact_json_and_rejects_values_that_are_not_json() -> None:
    kv = MemoryKV()
    cache = AnswerCache(kv, ttl_s=60)
    cache.put("A", "q", "v1", {"text": "é [1]", "n": 1})
    assert json.loads(kv.get(cache_key("A", "q", "v1")) or "") == {"text": "é [1]", "n": 1}
    with pytest.raises(TypeError):
        cache.put("A", "q", "v1", {"bad": object()})


# ------------------------------------------------------------------ Redis (the real server)


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_kv(redis_url: str, prefix: str):
    kv = RedisKV(redis_url, prefix=prefix)
    yield kv
    kv.close()


def test_redis_kv_round_trip_under_its_prefix(redis_kv: RedisKV, redis_url: str, prefix: str) -> None:
    assert isinstance(redis_kv, KeyValueStore) and redis_kv.mode == "redis"
    assert redis_kv.get("k") is None
    redis_kv.set("k", "välue")
    assert redis_kv.get("k") == "välue"
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert raw.get(prefix + "k") == "välue" and raw.get("k") is None
        other = RedisKV(redis_url, prefix=prefix + "other:")
        assert other.get("k") is None  # prefixes isolate
        other.close()
        redis_kv.set("t", "x", ttl_s=30)
        assert 29_000 <= raw.pttl(prefix + "t") <= 30_000
        assert raw.ttl(prefix + "k") == -1  # no ttl: no expiry
    finally:
        raw.close()
    redis_kv.delete("k")
    redis_kv.delete("k")  # absent: no error
    assert redis_kv.get("k") is None


def test_redis_kv_ttl_expires(redis_kv: RedisKV) -> None:
    redis_kv.set("short", "v", ttl_s=0.4)
    assert redis_kv.get("short") == "v"
    deadline = time.monotonic() + 5
    while redis_kv.get("short") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis_kv.get("short") is None
    assert time.monotonic() < deadline


def test_redis_kv_health_reports_the_server_version(redis_kv: RedisKV) -> None:
    health = redis_kv.health()
    assert health.ok and health.mode == "redis" and health.component == "cache"
    assert health.version and health.version[0].isdigit()
    assert health.endpoint and health.endpoint.startswith("redis://127.0.0.1:")


def test_answer_cache_on_redis_with_ttl_and_a_corrupt_entry(redis_kv: RedisKV) -> None:
    cache = AnswerCache(redis_kv, ttl_s=1)
    cache.put("A", "What is TEI?", "rag_chunks_v3", ANSWER)
    assert cache.get("A", "what is TEI", "rag_chunks_v3") == ANSWER
    assert cache.get("A", "what is TEI", "rag_chunks_v4") is None
    time.sleep(1.2)
    assert cache.get("A", "what is TEI", "rag_chunks_v3") is None

    key = cache_key("A", "q", "v1")
    redis_kv.set(key, '{"truncated": ')
    assert cache.get("A", "q", "v1") is None
    assert redis_kv.get(key) is None  # deleted


def test_redis_outage_raises_service_unavailable_naming_redis_url() -> None:
    kv = RedisKV(closed_port_url(), timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="REDIS_URL"):
        kv.get("k")
    with pytest.raises(ServiceUnavailable, match="redis-server is running"):
        kv.set("k", "v", ttl_s=5)
    with pytest.raises(ServiceUnavailable):
        kv.delete("k")
    assert time.monotonic() - started < 5
    health = kv.health()
    assert not health.ok and "REDIS_URL" in health.detail


def test_answer_cache_degrades_to_a_miss_when_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    cache = AnswerCache(RedisKV(closed_port_url(), timeout_s=0.5), ttl_s=60)
    with caplog.at_level(logging.WARNING, logger="ragdeck.console.answering.cache"):
        assert cache.get("A", "q", "v1") is None
        cache.put("A", "q", "v1", ANSWER)  # no exception
        cache.invalidate("A", "q", "v1")
    messages = [r.getMessage() for r in caplog.records]
    assert any("read failed" in m and "REDIS_URL" in m for m in messages)
    assert any("write failed" in m for m in messages)
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_redis_url_errors_and_redaction() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        RedisKV("http://127.0.0.1:6379")
    assert redact_url("redis://user:s3cret@127.0.0.1:6379/0") == "redis://***@127.0.0.1:6379/0"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    kv = RedisKV("redis://:s3cret@127.0.0.1:1/0", timeout_s=0.2)
    with pytest.raises(ServiceUnavailable) as info:
        kv.get("k")
    assert "s3cret" not in str(info.value)
