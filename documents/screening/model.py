"""A small linear model over words, word pairs and character 4-grams of the folded text (weights in model.json).

The model is a logistic regression trained by bench/train_screen.py. Features are present-or-absent, scaled by
one over the square root of their number, so a long text does not score high merely by being long. Weights are
loaded once, on first use, under a lock.
"""

import json
import math
import re
import threading
from pathlib import Path

from documents.screening.combine import Combiner

WEIGHTS_PATH = Path(__file__).with_name("model.json")
_WORD = re.compile(r"\w+|[^\w\s]")

_lock = threading.Lock()
_weights: "LinearModel | None" = None


def features(folded: str) -> tuple[list[str], list[str], list[str]]:
    """(words, word pairs, character 4-grams) of a folded text, each without repeats."""
    words = _WORD.findall(folded)
    pairs = [f"{first} {second}" for first, second in zip(words, words[1:], strict=False)]
    padded = f" {folded} "
    grams = [padded[index : index + 4] for index in range(len(padded) - 3)]
    return list(dict.fromkeys(words)), list(dict.fromkeys(pairs)), list(dict.fromkeys(grams))


class LinearModel:
    """Weights of the three feature kinds and a bias; probability() is the logistic of their scaled sum.

    `combiner`, when present, is the learned combination of this model with the other detectors (combine.py).
    """

    def __init__(self, bias: float, words: dict[str, float], pairs: dict[str, float], grams: dict[str, float],
                 combiner: Combiner | None = None) -> None:
        self.bias, self.words, self.pairs, self.grams = bias, words, pairs, grams
        self.combiner = combiner

    @classmethod
    def from_dict(cls, data: dict) -> "LinearModel":
        combiner = Combiner.from_dict(data["combiner"]) if data.get("combiner") else None
        return cls(float(data["bias"]), data["words"], data["pairs"], data["grams"], combiner)

    def to_dict(self) -> dict:
        data = {"bias": self.bias, "words": self.words, "pairs": self.pairs, "grams": self.grams}
        if self.combiner is not None:
            data["combiner"] = self.combiner.to_dict()
        return data

    def logit(self, folded: str) -> float:
        words, pairs, grams = features(folded)
        count = len(words) + len(pairs) + len(grams)
        if not count:
            return self.bias
        # map/filter keep the look-ups in C: unknown features give None and drop out of the sum.
        total = sum(filter(None, map(self.words.get, words)))
        total += sum(filter(None, map(self.pairs.get, pairs)))
        total += sum(filter(None, map(self.grams.get, grams)))
        return self.bias + total / math.sqrt(count)

    def probability(self, folded: str) -> float:
        value = max(-30.0, min(30.0, self.logit(folded)))
        return 1.0 / (1.0 + math.exp(-value))


def shipped_model() -> LinearModel | None:
    """The model shipped with the package, or None when its weights file is missing."""
    global _weights
    if _weights is None:
        with _lock:
            if _weights is None:
                if not WEIGHTS_PATH.exists():
                    return None
                _weights = LinearModel.from_dict(json.loads(WEIGHTS_PATH.read_text(encoding="utf-8")))
    return _weights
