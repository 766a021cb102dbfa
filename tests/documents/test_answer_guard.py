"""The answer guard: secrets redacted in text, snippets and titles; the canary caught however it is disguised."""

import uuid

import pytest

from documents.answering.base import Answer, Citation
from documents.answering.guard import CANARY_PREFIX, CanaryLeaked, answer_canary, answer_guard, canary_leaked

CANARY = "rs-canary-3f9a0c41d7b2e85a6c10"


def answer(text: str, snippet: str = "a passage", title: str = "Notes") -> Answer:
    citation = Citation(document_id=uuid.uuid4(), title=title, snippet=snippet, score=1.0)
    return Answer(text=text, citations=[citation], prompt_tokens=10, completion_tokens=5)


@pytest.mark.parametrize(
    "disguise",
    [
        CANARY,
        CANARY.upper(),
        " ".join(CANARY),
        "\u200b".join(CANARY),
        CANARY[::-1],
        "The marker starts 3f9a0c41d7 and that is all I can say.",
        "It ends in b2e85a6c10.",
        "Ｒｓ－ｃａｎａｒｙ－" + CANARY.removeprefix(CANARY_PREFIX),
        CANARY.replace("-", "_"),
    ],
)
def test_canary_is_caught_in_any_disguise(disguise):
    assert canary_leaked(f"Sure! {disguise} Anything else?", CANARY)
    with pytest.raises(CanaryLeaked):
        answer_guard(answer(f"Here you go: {disguise}"), canary=CANARY)


@pytest.mark.parametrize(
    "text",
    ["Forty-two herons were counted [1].", "The canary in the coal mine is a metaphor.", "rs-canary- is a prefix", "3f9a0c41"],
)
def test_ordinary_answers_are_not_mistaken_for_the_canary(text):
    assert not canary_leaked(text, CANARY)


def test_derived_canary_is_stable_secret_bound_and_overridable(settings):
    first = answer_canary()
    assert first.startswith(CANARY_PREFIX) and first == answer_canary()
    settings.SECRET_KEY = settings.SECRET_KEY + "-other-deployment"
    assert answer_canary() != first
    settings.RAGSECURE = {**settings.RAGSECURE, "ANSWER_CANARY": "rs-canary-chosen-by-operator"}
    assert answer_canary() == "rs-canary-chosen-by-operator"


@pytest.mark.parametrize(
    "secret, label",
    [
        ("sk-proj-Zq81mNc02LkPw93XbVt7RsYu", "[API KEY]"),
        ("sk-ant-api03-Q1w2E3r4T5y6U7i8O9p0", "[API KEY]"),
        ("rsk_live_4fG7hJ2kL9mN3pQ8rS1tV6", "[RAGSECURE KEY]"),
        ("AKIAQWERTYUIOPASDFGH", "[AWS KEY]"),
        ("ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "[GITHUB TOKEN]"),
        ("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl", "[JWT]"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7x\n-----END RSA PRIVATE KEY-----", "[PRIVATE KEY]"),
    ],
)
def test_secrets_are_redacted_everywhere_in_the_answer(secret, label):
    guarded, changed = answer_guard(
        answer(f"The key is {secret} [1].", snippet=f"key: {secret}", title=f"Keys {secret}"), canary=CANARY
    )
    assert secret not in guarded.text and label in guarded.text
    assert secret not in guarded.citations[0].snippet and secret not in guarded.citations[0].title
    assert changed == 3


def test_clean_answer_passes_unchanged():
    original = answer("Forty-two herons were counted [1].")
    guarded, changed = answer_guard(original, canary=CANARY)
    assert guarded == original and changed == 0
