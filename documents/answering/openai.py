"""An answerer calling an OpenAI-compatible chat-completions endpoint: timeouts, bounded retries, a strict reading of the reply."""

import email.utils
import json
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from documents.answering.base import Answer, Answerer, AnswererUnavailable, Citation
from documents.answering.extractive import NO_ANSWER, clip
from documents.answering.prompts import build_messages
from documents.retrieval.base import RetrievedChunk
from documents.text import token_count
from ragsecure.conf import ragsecure_settings
from ragsecure.secrets import SecretsError, get_secret

logger = logging.getLogger("ragsecure.answering")

API_KEY_SECRET = "llm-api-key"
MAX_SNIPPET_CHARS = 300


_RETRYABLE_STATUS = frozenset({429}) | frozenset(range(500, 600))
# "[1]", "[1, 2]", "[1][3]", "passage 2", "passages 2 and 3", "id=4".
_BRACKET_CITATION = re.compile(r"\[\s*(\d{1,4}(?:\s*[,;]\s*\d{1,4})*)\s*\]")
_WORD_CITATION = re.compile(r"\b(?:passages?|id\s*=)\s*(\d{1,4}(?:\s*(?:,|and|&)\s*\d{1,4})*)", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")
_HEADER_SAFE_KEY = re.compile(r"^[\x21-\x7e]+$")


PROMPT_TOKEN_MARGIN = 1.3  # model tokenizers split text finer than token_count() does
DEFAULT_COMPLETION_CAP = 4096


def _completion_cap(config: "_Config") -> int:
    return config.max_completion_tokens if config.max_completion_tokens > 0 else DEFAULT_COMPLETION_CAP


def _setting(name: str) -> Any:
    """One answering setting, read now (never cached), from the RAGSECURE namespace."""
    return getattr(ragsecure_settings, name)


@dataclass(frozen=True)
class _Config:
    url: str
    model: str
    connect_timeout: float
    read_timeout: float
    max_retries: int
    backoff: float
    max_wait: float
    max_response_bytes: int
    max_completion_tokens: int
    total_timeout: float

    @classmethod
    def current(cls) -> "_Config":
        base_url = str(ragsecure_settings.LLM_BASE_URL or "").strip()
        model = str(ragsecure_settings.LLM_MODEL or "").strip()
        if not base_url or not model:
            raise AnswererUnavailable("The language model backend is not configured (LLM_BASE_URL and LLM_MODEL).")
        try:
            url = httpx.URL(base_url.rstrip("/") + "/chat/completions")
        except httpx.InvalidURL:
            raise AnswererUnavailable("LLM_BASE_URL is not a valid URL.") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise AnswererUnavailable("LLM_BASE_URL must be an http or https URL.")
        return cls(
            url=str(url),
            model=model,
            connect_timeout=float(_setting("LLM_CONNECT_TIMEOUT_SECONDS")),
            read_timeout=float(_setting("LLM_TIMEOUT_SECONDS")),
            max_retries=max(0, int(_setting("LLM_MAX_RETRIES"))),
            backoff=max(0.0, float(_setting("LLM_RETRY_BACKOFF_SECONDS"))),
            max_wait=max(0.0, float(_setting("LLM_RETRY_MAX_WAIT_SECONDS"))),
            max_response_bytes=int(_setting("LLM_MAX_RESPONSE_BYTES")),
            max_completion_tokens=int(_setting("LLM_MAX_COMPLETION_TOKENS")),
            total_timeout=max(0.1, float(_setting("LLM_TOTAL_TIMEOUT_SECONDS"))),
        )


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not; carries the server's Retry-After, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _api_key() -> str:
    try:
        key = get_secret(API_KEY_SECRET).strip()
    except SecretsError:
        raise AnswererUnavailable("No API key for the language model backend is available.") from None
    if not _HEADER_SAFE_KEY.fullmatch(key):
        raise AnswererUnavailable("The language model API key is not a valid header value.")
    return key


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def cited_passages(text: str, passage_count: int) -> list[int]:
    """The passage numbers (1-based, within range) that `text` cites, in order of first mention."""
    found: dict[int, None] = {}
    mentions = [(m.start(), m.group(1)) for pattern in (_BRACKET_CITATION, _WORD_CITATION) for m in pattern.finditer(text)]
    for _, numbers in sorted(mentions):
        for number in map(int, _NUMBER.findall(numbers)):
            if 1 <= number <= passage_count:
                found.setdefault(number, None)
    return list(found)


def _citations(text: str, chunks: list[RetrievedChunk]) -> list[Citation]:
    """One citation per document the answer cites (each from its first cited passage), else per retrieved document in rank order."""
    cited = [chunks[number - 1] for number in cited_passages(text, len(chunks))] or chunks
    citations: dict[uuid.UUID, Citation] = {}
    for chunk in cited:
        if chunk.document_id not in citations:
            snippet = clip(" ".join(chunk.text.split()), MAX_SNIPPET_CHARS)
            citations[chunk.document_id] = Citation(document_id=chunk.document_id, title=chunk.title, snippet=snippet, score=chunk.score)
    return list(citations.values())


class OpenAICompatibleAnswerer(Answerer):
    """Asks an OpenAI-compatible chat-completions endpoint (LLM_BASE_URL, LLM_MODEL) with the key `llm-api-key`."""

    remote = True

    def __init__(
        self,
        *,
        canary: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.canary = canary
        self._sleep = sleep
        self._jitter = jitter
        self._transport = transport

    def answer(self, *, query: str, chunks: list[RetrievedChunk]) -> Answer:
        """The model's answer over `chunks`; AnswererUnavailable when it cannot be had or is malformed."""
        if not chunks:
            # Nothing to ground an answer in: say so without spending the caller's tokens.
            return Answer(text=NO_ANSWER, citations=[], prompt_tokens=token_count(query), completion_tokens=token_count(NO_ANSWER))
        config = _Config.current()
        key = _api_key()
        messages = build_messages(query, chunks, self.canary)
        # Always capped: the cap is what lets a budget reserve the answer's cost up front.
        payload: dict[str, Any] = {"model": config.model, "messages": messages, "max_tokens": _completion_cap(config)}
        body = self._complete(config, key, payload)
        text, prompt_tokens, completion_tokens = self._read(body, messages)
        claimed = None
        local_prompt = sum(token_count(message["content"]) for message in messages)
        if completion_tokens > payload["max_tokens"] or prompt_tokens > math.ceil(local_prompt * PROMPT_TOKEN_MARGIN) + 16 * len(messages):
            # More than the request allowed, or than the prompt can hold: the claim is not believed; the text is counted here.
            claimed = (prompt_tokens, completion_tokens)
            prompt_tokens, completion_tokens = local_prompt, min(token_count(text), payload["max_tokens"])
        return Answer(
            text=text,
            citations=_citations(text, chunks),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            claimed_usage=claimed,
        )

    def cost_bound(self, *, query: str, chunks: list[RetrievedChunk]) -> int:
        """Prompt tokens of the messages actually sent (with a margin for the model's own tokenizer) plus the completion cap."""
        if not chunks:
            return token_count(query) + token_count(NO_ANSWER)
        messages = build_messages(query, chunks, self.canary)
        prompt = sum(token_count(message["content"]) for message in messages)
        return math.ceil(prompt * PROMPT_TOKEN_MARGIN) + 16 * len(messages) + _completion_cap(_Config.current())

    # --- transport -------------------------------------------------------------------------

    def _complete(self, config: _Config, key: str, payload: dict[str, Any]) -> bytes:
        """The body of the first successful (200) reply, retrying transient failures with capped exponential backoff.

        Every attempt and wait together end by LLM_TOTAL_TIMEOUT_SECONDS: a slow backend costs the caller that long at most.
        """
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        deadline = time.monotonic() + config.total_timeout
        with httpx.Client(follow_redirects=False, transport=self._transport) as client:
            attempt = 0
            while True:
                try:
                    return self._attempt(client, config, headers, payload, deadline)
                except _Retryable as failure:
                    if attempt == config.max_retries:
                        logger.warning("LLM backend failed after %d attempts: %s", attempt + 1, failure.reason)
                        raise AnswererUnavailable(f"The language model backend is unavailable ({failure.reason}).") from None
                    if failure.retry_after is not None and failure.retry_after > config.max_wait:
                        # Waiting less than asked would only meet another refusal.
                        logger.warning("LLM backend asked to wait %.0f s, more than allowed", failure.retry_after)
                        raise AnswererUnavailable("The language model backend is rate limited; try again later.") from None
                    delay = self._backoff(config, attempt, failure.retry_after)
                    if time.monotonic() + delay >= deadline:
                        logger.warning("LLM backend failed after %d attempts within its time bound: %s", attempt + 1, failure.reason)
                        raise AnswererUnavailable(f"The language model backend is unavailable ({failure.reason}).") from None
                    logger.info("LLM backend attempt %d failed (%s); retrying in %.3f s", attempt + 1, failure.reason, delay)
                    self._sleep(delay)
                    attempt += 1

    def _backoff(self, config: _Config, attempt: int, retry_after: float | None) -> float:
        """Half the exponential step plus random jitter up to the other half, never less than Retry-After, never above the cap."""
        step = min(config.max_wait, config.backoff * (2**attempt))
        delay = step / 2 + self._jitter() * step / 2
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, config.max_wait)

    def _attempt(
        self, client: httpx.Client, config: _Config, headers: dict[str, str], payload: dict[str, Any], overall: float
    ) -> bytes:
        now = time.monotonic()
        deadline = min(now + config.connect_timeout + config.read_timeout, overall)
        remaining = max(0.01, deadline - now)
        timeout = httpx.Timeout(min(config.read_timeout, remaining), connect=min(config.connect_timeout, remaining))
        try:
            with client.stream("POST", config.url, json=payload, headers=headers, timeout=timeout) as response:
                status = response.status_code
                if status in _RETRYABLE_STATUS:
                    raise _Retryable(f"HTTP {status}", parse_retry_after(response.headers.get("Retry-After")))
                if status != 200:
                    raise AnswererUnavailable(f"The language model backend refused the request (HTTP {status}).")
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > config.max_response_bytes:
                    raise AnswererUnavailable("The language model backend sent a reply that is too large.")
                received = bytearray()
                for piece in response.iter_bytes():
                    received += piece
                    if len(received) > config.max_response_bytes:
                        raise AnswererUnavailable("The language model backend sent a reply that is too large.")
                    if time.monotonic() > deadline:
                        # A server that trickles bytes never trips the per-read timeout.
                        raise _Retryable("timeout")
                return bytes(received)
        except httpx.TimeoutException:
            raise _Retryable("timeout") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"connection failed: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise AnswererUnavailable(f"The language model backend sent an unreadable reply ({type(exc).__name__}).") from None

    # --- reply -----------------------------------------------------------------------------

    def _read(self, body: bytes, messages: list[dict[str, str]]) -> tuple[str, int, int]:
        """(answer text, prompt tokens, completion tokens) from a chat-completions reply; AnswererUnavailable when malformed."""
        malformed = AnswererUnavailable("The language model backend sent a malformed reply.")
        try:
            reply = json.loads(body)
        except (ValueError, RecursionError):
            raise malformed from None
        if not isinstance(reply, dict):
            raise malformed
        choices = reply.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise malformed
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise malformed
        text = content.strip()
        if not text:
            raise AnswererUnavailable("The language model backend sent an empty answer.")

        usage = reply.get("usage")
        if usage is None:
            prompt_tokens = sum(token_count(sent["content"]) for sent in messages)
            return text, prompt_tokens, token_count(text)
        if not isinstance(usage, dict):
            raise malformed
        prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not (_is_count(prompt_tokens) and _is_count(completion_tokens)):
            raise malformed
        return text, prompt_tokens, completion_tokens
