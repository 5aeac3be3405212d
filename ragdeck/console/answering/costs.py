"""What a completion costs: a price table (USD per 1M prompt / completion tokens by model) and the estimate.

The table comes from ``Settings.llm_prices``: TOML ``[llm_prices."gpt-4o-mini"] prompt = 0.15
completion = 0.6``, or the env as JSON (``RAGDECK_LLM_PRICES='{"gpt-4o-mini": {"prompt": 0.15, ...}}'``).
An entry named ``default`` prices every model without its own entry. Local models (a ``.gguf`` file, the
packaged Qwen2.5 alias, or ``local=True``) cost 0. Anything else unknown costs 0 with ``known=False``, so a
report can say "cost unknown" instead of "free".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ragdeck.errors import ConfigError
from ragdeck.services.types import ChatResult

DEFAULT_KEY = "default"
PER_TOKENS = 1_000_000
# Served by `ragdeck llm serve` (llama.cpp, this machine): free.
LOCAL_MODEL_NAMES = frozenset({"qwen2.5-coder-1.5b-instruct-q4_k_m"})


@dataclass(frozen=True)
class Price:
    """USD per 1M prompt tokens and per 1M completion tokens."""

    prompt: float = 0.0
    completion: float = 0.0


FREE = Price()


@dataclass(frozen=True)
class Cost:
    """An estimate: ``usd`` and whether a price was known for the model (False means "0, but unknown")."""

    usd: float
    known: bool
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Cost) -> Cost:
        """Sum of two estimates (over an eval run); known only when both are."""
        return Cost(
            usd=self.usd + other.usd,
            known=self.known and other.known,
            model=self.model if self.model == other.model else "mixed",
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


def is_local_model(model: str) -> bool:
    """True for models served from this machine: a ``.gguf`` path or the packaged model's alias."""
    name = model.strip().casefold()
    return name.endswith(".gguf") or name.rsplit("/", 1)[-1] in LOCAL_MODEL_NAMES


class PriceTable:
    """Model name -> ``Price``. Lookup: exact name, then case-insensitive, then the name after the last
    ``/`` (``Qwen/Qwen2.5-1.5B-Instruct`` matches ``qwen2.5-1.5b-instruct``), then local models (free), then
    the ``default`` entry; else unknown."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices = dict(prices or {})
        self._folded = {name.casefold(): price for name, price in self._prices.items()}

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> PriceTable:
        """Build from ``{"model": {"prompt": usd, "completion": usd}}``; ConfigError names a bad entry."""
        prices: dict[str, Price] = {}
        for name, entry in (raw or {}).items():
            where = f'llm_prices."{name}"'
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{where} must be a table like {{prompt = 0.1, completion = 0.4}}.")
            unknown = set(entry) - {"prompt", "completion"}
            if unknown:
                raise ConfigError(f"{where} has unknown keys {sorted(unknown)}: use prompt and completion.")
            values: dict[str, float] = {}
            for key in ("prompt", "completion"):
                try:
                    values[key] = float(entry.get(key, 0.0))
                except (TypeError, ValueError):
                    raise ConfigError(f"{where}.{key} must be a number (USD per 1M tokens).") from None
                if not values[key] >= 0:
                    raise ConfigError(f"{where}.{key} must be >= 0 USD per 1M tokens, got {values[key]}.")
            prices[str(name)] = Price(**values)
        return cls(prices)

    @classmethod
    def from_settings(cls, settings: Any) -> PriceTable:
        """The table in ``settings.llm_prices`` (a ``ragdeck.console.settings.Settings``)."""
        return cls.from_mapping(getattr(settings, "llm_prices", None))

    def lookup(self, model: str, *, local: bool = False) -> tuple[Price, bool]:
        """The price of ``model`` and whether it is known (see the class docstring for the order)."""
        name = model.strip()
        for candidate in (name, name.rsplit("/", 1)[-1]):
            if candidate in self._prices:
                return self._prices[candidate], True
            if candidate.casefold() in self._folded:
                return self._folded[candidate.casefold()], True
        if local or is_local_model(name):
            return FREE, True
        if DEFAULT_KEY in self._prices:
            return self._prices[DEFAULT_KEY], True
        return FREE, False

    def __len__(self) -> int:
        return len(self._prices)


def estimate_cost(
    result_or_tokens: ChatResult | tuple[int, int],
    model: str | None = None,
    table: PriceTable | None = None,
    *,
    local: bool = False,
) -> Cost:
    """USD for one completion: ``prompt_tokens / 1e6 * price.prompt + completion_tokens / 1e6 *
    price.completion``. Takes a ``ChatResult`` (its model is used unless ``model`` is given) or a
    ``(prompt_tokens, completion_tokens)`` pair; negative token counts count as 0."""
    if isinstance(result_or_tokens, ChatResult):
        prompt, completion = result_or_tokens.prompt_tokens, result_or_tokens.completion_tokens
        model = model or result_or_tokens.model
    else:
        prompt, completion = result_or_tokens
    prompt, completion = max(0, int(prompt)), max(0, int(completion))
    name = model or ""
    price, known = (table or PriceTable()).lookup(name, local=local)
    usd = (prompt * price.prompt + completion * price.completion) / PER_TOKENS
    return Cost(usd=usd, known=known, model=name, prompt_tokens=prompt, completion_tokens=completion)
