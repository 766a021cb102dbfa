"""chunk_text: deterministic passages on paragraph and sentence boundaries, within the token budget, one sentence of overlap."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from documents.chunking import DEFAULT_MAX_TOKENS, TooManyPassages, chunk_text
from documents.text import sentences, token_count


def sentence(number: int, words: int = 7) -> str:
    """A distinct sentence of `words` words plus its full stop (words + 1 tokens)."""
    return " ".join([f"s{number}"] + ["word"] * (words - 1)) + "."


def within_budget(chunks: list[str], max_tokens: int) -> list[int]:
    """The token counts of the chunks that exceed the budget (empty when all fit)."""
    return [token_count(chunk) for chunk in chunks if token_count(chunk) > max_tokens]


def chunk_words(chunks: list[str]) -> set[str]:
    return {word for chunk in chunks for word in chunk.split()}


# ---------------------------------------------------------------------------
# Basics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\n\n", " \t\r\n \u00a0\u2003 ", "\n \n\t\n"])
def test_empty_or_whitespace_gives_no_chunks(text):
    assert chunk_text(text) == []


def test_short_text_is_one_chunk_with_its_sentences():
    text = "Herons wait. Herons strike!  Do herons sleep?"

    assert chunk_text(text) == ["Herons wait. Herons strike! Do herons sleep?"]


def test_chunking_is_deterministic():
    text = "\n\n".join(" ".join(sentence(p * 10 + n, words=5 + n) for n in range(6)) for p in range(12))

    first = chunk_text(text, max_tokens=40)

    assert len(first) > 5
    assert chunk_text(text, max_tokens=40) == first
    assert chunk_text(str(text), max_tokens=40) == first


def test_default_budget_is_respected_on_a_long_document():
    text = "\n\n".join(" ".join(sentence(p * 100 + n, words=4 + n % 9) for n in range(15)) for p in range(30))

    chunks = chunk_text(text)

    assert len(chunks) > 10
    assert within_budget(chunks, DEFAULT_MAX_TOKENS) == []


# ---------------------------------------------------------------------------
# Sentences, paragraphs, overlap
# ---------------------------------------------------------------------------


def test_sentences_are_never_split_when_they_fit():
    originals = [sentence(n, words=3 + n % 6) for n in range(40)]

    chunks = chunk_text(" ".join(originals), max_tokens=25)

    assert within_budget(chunks, 25) == []
    for chunk in chunks:
        assert set(sentences(chunk)) <= set(originals), chunk
    covered = {part for chunk in chunks for part in sentences(chunk)}
    assert covered == set(originals)


def test_consecutive_chunks_share_one_sentence():
    originals = [sentence(n) for n in range(20)]  # 8 tokens each

    chunks = chunk_text(" ".join(originals), max_tokens=30)

    assert len(chunks) > 3
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert sentences(after)[0] == sentences(before)[-1]
        assert sentences(after)[1] != sentences(before)[-1]
    # Apart from the shared sentence, the chunks read the text in order.
    rebuilt = sentences(chunks[0]) + [part for chunk in chunks[1:] for part in sentences(chunk)[1:]]
    assert rebuilt == originals


def test_no_overlap_when_asked_for_none():
    originals = [sentence(n) for n in range(20)]

    chunks = chunk_text(" ".join(originals), max_tokens=30, overlap_sentences=0)

    assert [part for chunk in chunks for part in sentences(chunk)] == originals


def test_overlap_is_dropped_when_it_would_not_fit_with_the_next_sentence():
    big = sentence(1, words=20)  # 21 tokens
    bigger = sentence(2, words=20)

    assert chunk_text(f"{big} {bigger}", max_tokens=30) == [big, bigger]


def test_a_paragraph_starts_a_new_chunk_once_the_current_one_is_half_full():
    first = [sentence(n) for n in range(3)]  # 24 tokens: over half of 40
    second = [sentence(10 + n) for n in range(3)]

    chunks = chunk_text(" ".join(first) + "\n\n" + " ".join(second), max_tokens=40)

    assert chunks[0] == " ".join(first)
    assert chunks[1] == " ".join([first[-1], *second])


def test_short_paragraphs_share_a_chunk():
    chunks = chunk_text("Title line.\n\nA short paragraph.\n\nAnother one.", max_tokens=40)

    assert chunks == ["Title line. A short paragraph. Another one."]


def test_line_breaks_end_sentences():
    chunks = chunk_text("first line without stop\nsecond line without stop", max_tokens=5)

    assert chunks == ["first line without stop", "second line without stop"]


# ---------------------------------------------------------------------------
# Sentences longer than the budget
# ---------------------------------------------------------------------------


def test_one_huge_sentence_is_cut_on_words_within_the_budget():
    words = [f"w{number}" for number in range(1000)]

    chunks = chunk_text(" ".join(words) + ".", max_tokens=50)

    assert len(chunks) >= 20
    assert within_budget(chunks, 50) == []
    for chunk in chunks:
        assert set(chunk.rstrip(".").split()) <= set(words)
    assert chunk_words(chunks) >= set(words[:-1])
    # Cut on words: the words of the chunks, read in order, are the sentence's words.
    seen: list[str] = []
    for chunk in chunks:
        for word in chunk.rstrip(".").split():
            if not seen or seen[-1] != word:
                seen.append(word)
    assert [word for index, word in enumerate(seen) if word not in seen[:index]] == words


def test_a_huge_sentence_between_normal_ones_keeps_them_whole():
    before, after = sentence(1), sentence(2)
    huge = " ".join(f"h{number}" for number in range(300)) + "."

    chunks = chunk_text(f"{before} {huge} {after}", max_tokens=40)

    assert within_budget(chunks, 40) == []
    assert any(before in chunk for chunk in chunks)
    assert any(after in chunk for chunk in chunks)


@pytest.mark.parametrize(
    "word",
    ["a,b," * 200, "https://example.org/" + "/".join(["p"] * 300), '{"k":[' + ",".join(["1"] * 300) + "]}", "-" * 500],
    ids=["csv", "url", "json", "dashes"],
)
def test_a_single_word_longer_than_the_budget_is_still_cut(word):
    # Minified JSON, long URLs and CSV lines have no spaces but hundreds of tokens.
    assert token_count(word) > 100

    chunks = chunk_text(f"Before it. {word} After it.", max_tokens=50)

    assert within_budget(chunks, 50) == []


def test_overlap_of_two_sentences_stays_within_the_budget():
    # Each carried sentence fits beside the next one, but the two together do not.
    originals = [sentence(n, words=10) for n in range(10)]  # 11 tokens each

    chunks = chunk_text(" ".join(originals), max_tokens=30, overlap_sentences=2)

    assert within_budget(chunks, 30) == []


# ---------------------------------------------------------------------------
# Other scripts
# ---------------------------------------------------------------------------


def test_cyrillic_sentences():
    text = "Привет мир. Как дела? Хорошо! Сегодня идёт дождь. Завтра будет солнце."

    chunks = chunk_text(text, max_tokens=8)

    assert within_budget(chunks, 8) == []
    assert chunk_words(chunks) == set(text.split())
    for chunk in chunks:
        assert set(sentences(chunk)) <= {"Привет мир.", "Как дела?", "Хорошо!", "Сегодня идёт дождь.", "Завтра будет солнце."}


def test_cjk_punctuation_followed_by_spaces_ends_sentences():
    text = "今日は晴れです。 明日は雨です！ 本当ですか？ はい。"

    assert sentences(text) == ["今日は晴れです。", "明日は雨です！", "本当ですか？", "はい。"]
    # Each kana/han character is a token: these sentences are 8, 7, 6 and 3 tokens long.
    assert chunk_text(text, max_tokens=15) == ["今日は晴れです。 明日は雨です！", "明日は雨です！ 本当ですか？", "本当ですか？ はい。"]


def test_cjk_text_without_spaces_is_split_into_sentences():
    # Chinese and Japanese put no space after 。！？: those marks alone must end a sentence.
    text = "今日は晴れです。明日は雨です！本当ですか？"

    assert sentences(text) == ["今日は晴れです。", "明日は雨です！", "本当ですか？"]


def test_long_cjk_text_without_spaces_stays_within_the_budget():
    text = "今日は晴れです。明日は雨です！本当ですか？" * 60  # 360 tokens, no whitespace at all

    chunks = chunk_text(text, max_tokens=50)

    assert len(chunks) > 1
    assert within_budget(chunks, 50) == []


def test_mixed_scripts_keep_every_word():
    text = "Tokyo 東京 is big. Москва тоже большая! Αθήνα είναι παλιά? مرحبا بالعالم."

    chunks = chunk_text(text, max_tokens=6)

    assert within_budget(chunks, 6) == []
    assert chunk_words(chunks) == set(text.split())


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


SEPARATORS = st.sampled_from([" ", "  ", "\n", "\n\n", "\t", ". ", "! ", "? ", "。", "！", "？", ".\n\n", "\u3000", "\u00a0"])
ANY_TEXT = st.lists(st.one_of(st.text(min_size=1, max_size=12), SEPARATORS), max_size=120).map("".join)
WORD = st.text(alphabet=st.characters(categories=["L", "Nd"]), min_size=1, max_size=10)
WORDY_SENTENCE = st.lists(WORD, min_size=1, max_size=30).map(" ".join).map(lambda words: words + ".")
WORDY_PARAGRAPH = st.lists(WORDY_SENTENCE, min_size=1, max_size=8).map(" ".join)
WORDY_TEXT = st.lists(WORDY_PARAGRAPH, max_size=6).map("\n\n".join)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(text=ANY_TEXT, max_tokens=st.integers(min_value=1, max_value=60), overlap=st.integers(min_value=0, max_value=1))
def test_property_never_raises_and_keeps_every_word(text, max_tokens, overlap):
    chunks = chunk_text(text, max_tokens=max_tokens, overlap_sentences=overlap)

    assert chunks == chunk_text(text, max_tokens=max_tokens, overlap_sentences=overlap)
    assert all(chunk.strip() for chunk in chunks)
    assert (chunks == []) == (text.split() == [])
    joined = "\n".join(chunks)
    for word in text.split():
        # A word longer than the budget can only be kept in pieces, and 。！？ end a sentence even inside a "word".
        assert word in joined or token_count(word) > max_tokens or any(mark in word[:-1] for mark in "。！？"), word
    for word in chunk_words(chunks):
        assert word in text, word


@FAST
@given(text=ANY_TEXT, max_tokens=st.integers(min_value=1, max_value=60))
def test_property_every_chunk_is_within_the_budget(text, max_tokens):
    chunks = chunk_text(text, max_tokens=max_tokens)

    assert within_budget(chunks, max_tokens) == []


@FAST
@given(text=WORDY_TEXT, max_tokens=st.integers(min_value=2, max_value=80))
def test_property_prose_is_within_the_budget_with_whole_sentences(text, max_tokens):
    chunks = chunk_text(text, max_tokens=max_tokens)

    assert within_budget(chunks, max_tokens) == []
    # Words that fit the budget survive whole (longer ones must be cut).
    assert {word for word in text.split() if token_count(word) <= max_tokens} <= chunk_words(chunks)
    originals = {part for paragraph in text.split("\n\n") for part in sentences(paragraph)}
    for chunk in chunks:
        for part in sentences(chunk):
            # Either a whole sentence of the input, or a piece of one that alone exceeds the budget.
            assert part in originals or any(part.rstrip(".") in original for original in originals if token_count(original) > max_tokens)


# -- bounded cost ---------------------------------------------------------------------------------------------------


def test_a_punctuation_run_past_the_passage_cap_is_refused_before_chunking(monkeypatch):
    """1 MB of '.-' is a million tokens: refused by the counting pass, never cut into thousands of passages."""
    import documents.chunking as chunking

    monkeypatch.setattr(chunking, "_sentence_spans", lambda text: pytest.fail("chunked a text past the cap"))
    with pytest.raises(TooManyPassages):
        chunk_text(".-" * 499_500, max_chunks=1000)


def test_the_cap_counts_passages_not_only_tokens():
    """Short paragraphs make a passage each once the current one is half full: the count itself is capped too."""
    text = "\n\n".join(" ".join(["word"] * 120) for _ in range(30))
    assert len(chunk_text(text)) == 30
    with pytest.raises(TooManyPassages):
        chunk_text(text, max_chunks=29)
    assert len(chunk_text(text, max_chunks=30)) == 30


def test_a_megabyte_of_prose_fits_the_default_cap():
    words = [f"word{number % 997}" for number in range(140_000)]
    prose = ". ".join(" ".join(words[start : start + 12]) for start in range(0, len(words), 12))
    assert len(prose.encode()) > 1_000_000
    assert len(chunk_text(prose, max_chunks=1000)) <= 1000
