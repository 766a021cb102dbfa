"""The learned combination of the detectors: a small logistic regression over what each detector found in one unit.

The detectors (patterns, obfuscations, decoders, the word model) each say something partial; how much each is worth
next to the others, and next to simple signs of an instruction addressed to a model (an imperative opening, "you",
talk of instructions or personas), is learned by bench/train_screen.py from held-out detector outputs and shipped in
model.json. A unit in which no detector found anything scores 0 whatever the structure features say, so plain text
costs nothing and an almost empty text cannot score on the combiner's bias alone.
"""

import math
import re
from dataclasses import dataclass

INTENT_CODES = (
    "override", "output_coercion", "prompt_extraction", "persona", "exfiltration", "code_injection", "tool_abuse",
    "addressed_to_model", "encoded_instruction",
)
# The word model speaks only on texts with some content: letters, counted in words of five (CJK characters carry
# more meaning each). Below MODEL_MIN_WORDS it says nothing; up to MODEL_FULL_WORDS its logit is scaled down.
MODEL_MIN_WORDS = 4.0
MODEL_FULL_WORDS = 8.0

# Runs, not single characters: the same counts (summed run lengths) with a fraction of the objects.
_LETTER = re.compile(r"[^\W\d_]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*|\"\s*)(?:please\s+|now\s+|then\s+|and\s+|also\s+|just\s+)?"
                             r"(?:ignore|disregard|forget|say|print|write|tell|act|pretend|respond|reply|answer|repeat|"
                             r"output|give|show|reveal|stop|imagine|be|become|start|begin|continue|do|make|generate|"
                             r"include|add|append|send|translate|return|list|describe|explain|summari[sz]e|use|put|"
                             r"remember|assume|switch|enter|roleplay|simulate|answer|vergiss|ignoriere|sag|schreibe|"
                             r"antworte|gib|zeige|tu|stell)\b")
_SECOND_PERSON = re.compile(r"\b(?:you|your|yourself|you're|du|dein|deine|dich|dir|tu|vous|usted)\b")
_INSTRUCTION_TALK = re.compile(r"\b(?:instructions?|prompts?|rules?|guidelines?|directives?|persona|character|roles?|"
                               r"programming|restrictions?|filters?|policy|policies|anweisungen|regeln)\b")
_NOW = re.compile(r"\b(?:from now on|now|henceforth|instead|anymore|no longer|jetzt|nun|ab sofort)\b")
_ROLE_WORD = re.compile(r"\b(?:assistant|ai|chatbot|bot|model|gpt|chatgpt|llm|language model|dan|jailbreak|"
                        r"jailbroken|unfiltered|uncensored)\b")
# Parts of an ordinary document the request is about ("the paragraph about retention", "cite the page numbers").
_DOCUMENT_PART = re.compile(r"\b(?:paragraphs?|clauses?|sections?|chapters?|page numbers?|pages|appendix|appendices|"
                            r"report|handbook|manual|contract|runbook|spreadsheet|slides?|footnotes?|figures?|minutes|"
                            r"invoice|brochure|datasheet|whitepaper|annex)\b")
_QUOTED = re.compile(r"[\"'“”‘’«»„][^\"“”«»„]{1,60}[\"'“”‘’«»]")


@dataclass(frozen=True)
class Unit:
    """What the detectors found in one text or window, before combining."""

    folded: str
    kind: str
    evidence: dict[str, float]  # reason code -> weight (patterns, obfuscations, decoded payloads)
    model_logit: float | None  # None: the model was not consulted
    words: float  # content, in words of five letters


def content_words(folded: str) -> float:
    return (sum(map(len, _LETTER.findall(folded))) + 1.5 * sum(map(len, _CJK.findall(folded)))) / 5.0


def model_signal(unit: Unit) -> float:
    """The model's logit, scaled down on short texts (0 where the text is too short for it to mean anything)."""
    if unit.model_logit is None or unit.words < MODEL_MIN_WORDS:
        return 0.0
    return max(-8.0, min(8.0, unit.model_logit)) * min(1.0, unit.words / MODEL_FULL_WORDS)


def has_evidence(unit: Unit) -> bool:
    """Whether any detector spoke: a pattern, an obfuscation, a payload, or the model (on a text long enough)."""
    return any(weight > 0.0 for weight in unit.evidence.values()) or bool(model_signal(unit))


def noisy_or(weights) -> float:
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    return 1.0 - remaining


def unit_features(unit: Unit) -> dict[str, float]:
    """Named features of a unit for the combiner (all 0 or small positive numbers, except the model's signal)."""
    evidence, folded = unit.evidence, unit.folded
    features: dict[str, float] = {}
    for code in INTENT_CODES:
        if evidence.get(code):
            features[f"intent:{code}"] = evidence[code]
    obfuscation = max((weight for code, weight in evidence.items() if code.startswith("obfuscation:")), default=0.0)
    decoded = max((weight for code, weight in evidence.items() if code.startswith("decoded:")), default=0.0)
    if obfuscation:
        features["obfuscation"] = obfuscation
    if decoded:
        features["decoded"] = decoded
    patterns = noisy_or(evidence.values())
    features["patterns"] = patterns
    features["patterns_many"] = max(0.0, sum(1 for weight in evidence.values() if weight >= 0.3) - 1.0) / 2.0
    signal = model_signal(unit)
    features["model_positive"] = max(0.0, signal) / 4.0
    features["model_negative"] = min(0.0, signal) / 4.0
    features["model_strong"] = max(0.0, signal - 2.0) / 4.0
    features["patterns_strong"] = max(0.0, patterns - 0.5) * 2.0
    document = unit.kind == "document"
    if document:
        features["document"] = 1.0
        features["document_model"] = features["model_positive"]
        features["document_patterns"] = patterns
    head = folded[:2000]
    features["imperative_opening"] = min(2, len(_SENTENCE_START.findall(head))) / 2.0
    features["second_person"] = min(3, len(_SECOND_PERSON.findall(head))) / 3.0
    features["instruction_talk"] = 1.0 if _INSTRUCTION_TALK.search(head) else 0.0
    features["now"] = 1.0 if _NOW.search(head) else 0.0
    features["role_word"] = 1.0 if _ROLE_WORD.search(head) else 0.0
    features["quoted"] = 1.0 if _QUOTED.search(head) else 0.0
    # Only without strong evidence: naming a "report" must not buy an attack a discount.
    features["document_part"] = 1.0 if patterns < 0.5 and _DOCUMENT_PART.search(head) else 0.0
    features["question"] = 1.0 if folded.rstrip().endswith("?") else 0.0
    features["short"] = 1.0 if unit.words < 6 else 0.0
    features["long"] = 1.0 if unit.words > 150 else 0.0
    return {name: value for name, value in features.items() if value}


class Combiner:
    """Weights of the named features and a bias; score() is the logistic of their sum, 0 without evidence."""

    def __init__(self, bias: float, weights: dict[str, float]) -> None:
        self.bias, self.weights = bias, weights

    @classmethod
    def from_dict(cls, data: dict) -> "Combiner":
        return cls(float(data["bias"]), {name: float(value) for name, value in data["weights"].items()})

    def to_dict(self) -> dict:
        return {"bias": self.bias, "weights": self.weights}

    def probability(self, features: dict[str, float]) -> float:
        get = self.weights.get
        value = self.bias + sum(get(name, 0.0) * amount for name, amount in features.items())
        value = max(-30.0, min(30.0, value))
        return 1.0 / (1.0 + math.exp(-value))

    def score(self, unit: Unit) -> float:
        if not has_evidence(unit):
            return 0.0
        return self.probability(unit_features(unit))
