"""Combining the detectors into one score per text: obfuscation, decoded payloads, intent patterns and the model."""

from documents.screening.decode import decode_all
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


def _noisy_or(weights: list[float]) -> float:
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    return 1.0 - remaining


def _windows(text: str) -> list[str]:
    """Overlapping pieces of about WINDOW_CHARS, cut after a line break or full stop where one is near."""
    pieces, start, length = [], 0, len(text)
    while start < length:
        end = min(length, start + WINDOW_CHARS)
        if end < length:
            cut = max(text.rfind("\n", start + WINDOW_CHARS // 2, end), text.rfind(". ", start + WINDOW_CHARS // 2, end))
            if cut > 0:
                end = cut + 1
        pieces.append(text[start:end])
        if end >= length:
            break
        start = max(end - WINDOW_OVERLAP, start + 1)
    return pieces


def _strongest(evidence: dict[str, float], found: dict[str, float]) -> None:
    for code, weight in found.items():
        if weight > evidence.get(code, 0.0):
            evidence[code] = weight


def _shifted_only(text: str, folded: str) -> list[tuple[str, str]]:
    """Letter shifts and reversal of one document window (run decoders were tried on the whole document)."""
    return [item for item in decode_all("", folded) if item[0] in ("rot13", "atbash", "reversed")]


def _add_decoded(evidence: dict[str, float], payloads: list[tuple[str, str]], kind: str, model: LinearModel | None,
                 depth: int) -> None:
    for method, decoded in payloads[:MAX_DECODED_PER_UNIT]:
        inner_score, inner = _score_unit(decoded, kind, model, depth + 1)
        shows_intent = any(not code.startswith(("decoded:", "obfuscation:")) and code != "model" for code in inner)
        if kind == "document" and method not in _INVISIBLE_METHODS and not shows_intent:
            continue  # base64 blobs, keys and tokens are normal in technical documents; only a message counts
        key = f"decoded:{method}"
        evidence[key] = max(evidence.get(key, 0.0), _DECODED_BASE.get(method, 0.3), inner_score)
        for code in inner:
            if not code.startswith("decoded:") and code != "model":
                evidence.setdefault(code, 0.0)  # named as a reason, counted through the decoded score


def _score_unit(text: str, kind: str, model: LinearModel | None, depth: int,
                decode: bool = True) -> tuple[float, dict[str, float]]:
    """Score of one window and the evidence behind it (reason code -> weight).

    Patterns run only when the prefilter finds their anchors; in a document window the model runs only when the
    window already shows something (a pattern, an obfuscation, a payload) or speaks of an assistant and its
    instructions, so plain prose costs a fold, a word split and a few set look-ups.
    """
    folded = fold(text)
    tokens = tokens_of(folded.text)
    evidence = intents(folded.text, kind, tokens)
    if folded.leet is not None:
        before = dict(evidence)
        _strongest(evidence, intents(folded.leet, kind))
        if evidence != before:
            evidence["obfuscation:leetspeak"] = 0.2
    for code in folded.obfuscations:
        weight = _OBFUSCATION_WEIGHTS.get(code, 0.0) * (_DOCUMENT_OBFUSCATION_FACTOR if kind == "document" else 1.0)
        if weight:
            evidence[f"obfuscation:{code}"] = weight
    if depth < MAX_DECODE_DEPTH:
        payloads = decode_all(text, folded.text) if decode else _shifted_only(text, folded.text)
        _add_decoded(evidence, payloads, kind, model, depth)
    if model is not None and folded.text and (kind == "query" or (evidence and tokens & _MODEL_TRIGGERS)):
        probability, floor = model.probability(folded.text), MODEL_FLOOR[kind]
        if probability > floor:
            evidence["model"] = MODEL_WEIGHT * (probability - floor) / (1.0 - floor)
    return _noisy_or(list(evidence.values())), evidence


def score_text(text: str, kind: str = "query", *, model: object = _SHIPPED) -> tuple[float, tuple[str, ...]]:
    """(score 0..1 rounded to 3 decimals, reason codes strongest first) for `text` screened as a query or document.

    Needs no Django settings. `model` replaces the shipped model (None: patterns only), for cross-validation.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    linear = shipped_model() if model is _SHIPPED else model
    if linear is not None and not isinstance(linear, LinearModel):
        raise TypeError("model must be a LinearModel or None")
    if len(text) <= WINDOW_CHARS + WINDOW_OVERLAP:
        score, evidence = _score_unit(text, kind, linear, 0)
    else:
        # Run decoders read the whole text once (a long encoded run is one payload, not one per window); each
        # window then gets patterns, letter shifts and, where it shows something, the model.
        evidence = {}
        _add_decoded(evidence, decode_all(text, "", shifted=False), kind, linear, 0)
        score = _noisy_or(list(evidence.values()))
        for piece in _windows(text):
            piece_score, piece_evidence = _score_unit(piece, kind, linear, 0, decode=False)
            if piece_score > score:
                score, evidence = piece_score, piece_evidence
    ranked = sorted(evidence.items(), key=lambda item: -item[1])
    reasons = tuple(code for code, weight in ranked if weight >= REASON_MIN_WEIGHT or weight == 0.0)
    if score < REASON_MIN_WEIGHT:
        reasons = ()
    return round(min(1.0, max(0.0, score)), 3), reasons
