"""Combining the detectors into one score per text: obfuscation, decoded payloads, intent patterns and the model."""

import math

from documents.screening.combine import MODEL_MIN_WORDS, Unit, content_words, model_signal, noisy_or
from documents.screening.decode import MAX_SPAN_CHARS, STOPWORDS, decode_all
from documents.screening.intent import intents, tokens_of
from documents.screening.model import LinearModel, shipped_model
from documents.screening.normalize import fold

KINDS = ("query", "document")
MAX_DECODE_DEPTH = 3
# A text longer than this is scored in overlapping windows and takes the highest window, so one instruction hidden
# in the middle of a long benign document is weighed against its neighbourhood, not against the whole file.
WINDOW_CHARS = 1200
WINDOW_OVERLAP = 250
MAX_DECODED_PER_UNIT = 8

# Evidence of hiding something, before knowing what: how strongly each obfuscation alone points to an attack.
_OBFUSCATION_WEIGHTS = {
    "zero_width": 0.5,
    "homoglyph": 0.5,
    "fullwidth": 0.45,
    "letter_spacing": 0.35,
    "bidi": 0.4,
    "leetspeak": 0.0,  # reported only when the un-leeted copy reveals an intent
}
# A readable payload found by decoding: hidden text is suspicious in itself, invisible text more so.
_DECODED_BASE = {
    "unicode_tags": 0.7,
    "variation_selectors": 0.7,
    "base64": 0.45,
    "base32": 0.5,
    "hex": 0.45,
    "morse": 0.5,
    "nato": 0.5,
    "braille": 0.5,
    "rot13": 0.45,
    "atbash": 0.45,
    "reversed": 0.35,
}
# Hidden characters carry a message by construction; other encodings count in a document only when the decoded text
# itself shows an intent (keys, tokens and images are base64 in ordinary technical documents).
_INVISIBLE_METHODS = frozenset({"unicode_tags", "variation_selectors"})
# Words of text that addresses a model or its instructions: a document window without any of them and without other
# evidence is not given to the model (trained on queries, it reads plain prose poorly and costs most of the time).
_MODEL_TRIGGERS = frozenset(
    "ai assistant assistants chatbot bot gpt chatgpt llm model language prompt prompts instruction instructions "
    "ignore disregard forget override system you your respond reply answer response summary summarise summarize "
    "anweisungen ignoriere vergiss instrucciones instructions istruzioni instruções".split()
)
# Documents carry extraction artefacts (odd spacing, mixed scripts) more often than typed queries do.
_DOCUMENT_OBFUSCATION_FACTOR = 0.6
# The model's probability counts above a floor only, stretched to 0..MODEL_WEIGHT (below it says nothing). It was
# trained on queries; on document windows it is trusted only when very sure.
MODEL_FLOOR = {"query": 0.7, "document": 0.9}
MODEL_WEIGHT = 0.75
REASON_MIN_WEIGHT = 0.2

_SHIPPED = object()


def _window_spans(text: str) -> list[tuple[int, int]]:
    """Overlapping pieces of about WINDOW_CHARS, cut after a line break or full stop where one is near."""
    spans, start, length = [], 0, len(text)
    while start < length:
        end = min(length, start + WINDOW_CHARS)
        if end < length:
            cut = max(text.rfind("\n", start + WINDOW_CHARS // 2, end), text.rfind(". ", start + WINDOW_CHARS // 2, end))
            if cut > 0:
                end = cut + 1
        spans.append((start, end))
        if end >= length:
            break
        start = max(end - WINDOW_OVERLAP, start + 1)
    return spans


def _windows(text: str) -> list[str]:
    return [text[start:end] for start, end in _window_spans(text)]


def _strongest(evidence: dict[str, float], found: dict[str, float]) -> None:
    for code, weight in found.items():
        if weight > evidence.get(code, 0.0):
            evidence[code] = weight


# Frequent function words, each counted where spaces stand on both sides: every such occurrence is one the decoder's
# own count (stopword_count) counts too, so their sum is a cheap lower bound of it.
_FREQUENT_STOPWORDS = tuple(
    f" {word} " for word in (
        "the of and to a in is for that it on you with as are be this or by your at not from can will if an we "
        "de la en y el que los las es un una der die und das ist zu den mit et le les est une pour vous il"
    ).split() if word in STOPWORDS
)


def _shifted_only(text: str, folded: str, tokens: set[str]) -> list[tuple[str, str]]:
    """Letter shifts and reversal of one document window (run decoders were tried on the whole document)."""
    # Prose full of function words cannot be a shifted text: the decoder tries only a text with fewer than this many
    # (folded text has single spaces, so counting them counts its words). Two cheap lower bounds of the decoder's
    # count come first, the distinct function words and the commonest ones between spaces; neither ever skips a
    # window the decoder would try.
    enough = max(3, (folded.count(" ") + 1) * 0.15)
    if len(STOPWORDS.intersection(tokens)) >= enough:
        return []
    if len(folded) <= MAX_SPAN_CHARS * 4:  # all of it is the decoder's sample
        count = 0
        for word in _FREQUENT_STOPWORDS:
            count += folded.count(word)
            if count >= enough:
                return []
    return [item for item in decode_all("", folded) if item[0] in ("rot13", "atbash", "reversed")]


def _add_decoded(evidence: dict[str, float], payloads: list[tuple[str, str]], kind: str, model: LinearModel | None,
                 depth: int) -> None:
    for method, decoded in payloads[:MAX_DECODED_PER_UNIT]:
        inner_unit = _unit(decoded, kind, model, depth + 1)
        inner_score = _unit_score(inner_unit, model)
        inner = inner_unit.evidence
        shows_intent = any(not code.startswith(("decoded:", "obfuscation:")) and weight > 0.0
                           for code, weight in inner.items())
        if kind == "document" and method not in _INVISIBLE_METHODS and not shows_intent:
            continue  # base64 blobs, keys and tokens are normal in technical documents; only a message counts
        key = f"decoded:{method}"
        evidence[key] = max(evidence.get(key, 0.0), _DECODED_BASE.get(method, 0.3), inner_score)
        for code in inner:
            if not code.startswith("decoded:"):
                evidence.setdefault(code, 0.0)  # named as a reason, counted through the decoded score


def _unit(text: str, kind: str, model: LinearModel | None, depth: int, decode: bool = True) -> Unit:
    """What the detectors find in one window (or a whole short text), not yet combined.

    Patterns run only when the prefilter finds their anchors; in a document window the model runs only when the
    window already shows something (a pattern, an obfuscation, a payload) and speaks of an assistant and its
    instructions, so plain prose costs a fold, a word split and a few set look-ups.
    """
    folded = fold(text)
    tokens = tokens_of(folded.text)
    evidence = intents(folded.text, kind, tokens)
    # Un-leeting can only reveal an intent through words it creates; in a document (dates, prices, versions) most
    # copies create none, and the pattern pass would read the same words twice.
    leet_tokens = tokens_of(folded.leet) if folded.leet is not None else None
    if leet_tokens is not None and (kind == "query" or not leet_tokens <= tokens):
        before = dict(evidence)
        _strongest(evidence, intents(folded.leet, kind, leet_tokens))
        if evidence != before:
            evidence["obfuscation:leetspeak"] = 0.2
    for code, count in folded.obfuscations.items():
        weight = _OBFUSCATION_WEIGHTS.get(code, 0.0) * (_DOCUMENT_OBFUSCATION_FACTOR if kind == "document" else 1.0)
        if code == "homoglyph" and weight:
            # Two mixed-script words can be a slip of the keyboard; a sentence of them is deliberate.
            weight = min(0.8, weight + 0.05 * max(0, count - 3))
        if weight:
            evidence[f"obfuscation:{code}"] = weight
    if depth < MAX_DECODE_DEPTH:
        payloads = decode_all(text, folded.text) if decode else _shifted_only(text, folded.text, tokens)
        _add_decoded(evidence, payloads, kind, model, depth)
    words, logit = 0.0, None
    # Content is counted only where it matters: a document window without evidence scores 0 whatever it holds.
    if folded.text and (kind == "query" or evidence):
        words = content_words(folded.text)
        if model is not None and words >= MODEL_MIN_WORDS and (kind == "query" or tokens & _MODEL_TRIGGERS):
            logit = model.logit(folded.text)
    return Unit(folded.text, kind, evidence, logit, words)


def _model_weight(unit: Unit) -> float:
    """The model's part as a reason weight: its (length-scaled) probability above the floor, stretched."""
    signal = model_signal(unit)
    if not signal:
        return 0.0
    probability, floor = 1.0 / (1.0 + math.exp(-signal)), MODEL_FLOOR[unit.kind]
    return MODEL_WEIGHT * (probability - floor) / (1.0 - floor) if probability > floor else 0.0


def _unit_score(unit: Unit, model: LinearModel | None) -> float:
    combiner = getattr(model, "combiner", None)
    if combiner is not None:
        return combiner.score(unit)
    # Without a trained combination (patterns only, or a bare model while training): a noisy-OR of the evidence.
    return noisy_or([*unit.evidence.values(), _model_weight(unit)])


def _reasons(unit: Unit) -> dict[str, float]:
    evidence = dict(unit.evidence)
    weight = _model_weight(unit)
    if weight:
        evidence["model"] = weight
    return evidence


def units_of(text: str, kind: str, model: LinearModel | None) -> list[Unit]:
    """The units a text is scored by: itself, or (long texts) its windows plus its whole-text decoded payloads."""
    if len(text) <= WINDOW_CHARS + WINDOW_OVERLAP:
        return [_unit(text, kind, model, 0)]
    # Run decoders read the whole text once (a long encoded run is one payload, not one per window); each window
    # then gets patterns, letter shifts and, where it shows something, the model.
    evidence: dict[str, float] = {}
    _add_decoded(evidence, decode_all(text, "", shifted=False), kind, model, 0)
    units = [Unit("", kind, evidence, None, 0.0)] if evidence else []
    units.extend(_unit(piece, kind, model, 0, decode=False) for piece in _windows(text))
    return units


def _check(text: object, kind: str, model: object) -> LinearModel | None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    linear = shipped_model() if model is _SHIPPED else model
    if linear is not None and not isinstance(linear, LinearModel):
        raise TypeError("model must be a LinearModel or None")
    return linear


def strongest_unit(text: str, kind: str = "query", *, model: object = _SHIPPED) -> tuple[float, Unit]:
    """(score, unit) of the unit that decides a text's score: for training the combiner and for explaining."""
    linear = _check(text, kind, model)
    best_score, best = -1.0, None
    for unit in units_of(text, kind, linear):
        unit_score = _unit_score(unit, linear)
        if unit_score > best_score:
            best_score, best = unit_score, unit
    return max(0.0, best_score), best


def score_text(text: str, kind: str = "query", *, model: object = _SHIPPED) -> tuple[float, tuple[str, ...]]:
    """(score 0..1 rounded to 3 decimals, reason codes strongest first) for `text` screened as a query or document.

    Needs no Django settings. `model` replaces the shipped model (None: patterns only), for cross-validation.
    """
    score, unit = strongest_unit(text, kind, model=model)
    if unit is None or score < REASON_MIN_WEIGHT:
        return round(min(1.0, max(0.0, score)), 3), ()
    ranked = sorted(_reasons(unit).items(), key=lambda item: -item[1])
    reasons = tuple(code for code, weight in ranked if weight >= REASON_MIN_WEIGHT or weight == 0.0)
    if not reasons:
        reasons = ("combined",)
    return round(min(1.0, max(0.0, score)), 3), reasons
