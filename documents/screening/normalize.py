"""Folding a copy of a text into the plain lower-case Latin form the detectors read, noting the obfuscations it undid."""

import re
import unicodedata
from dataclasses import dataclass

# Characters that render as nothing. ZWJ/ZWNJ are legitimate inside Persian, Indic and emoji sequences, so their
# mere presence is no evidence; only invisible characters wedged between Latin letters are.
_INVISIBLE = "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2060-\u2064\u206a-\u206f\u3164\ufeff\uffa0"
_BIDI = "\u202a-\u202e\u2066-\u2069"
# Characters that carry text invisibly (decode.py reads them back): Unicode tags and variation selectors.
TAG_CHARS = "\U000e0000-\U000e007f"
SELECTOR_CHARS = "\ufe00-\ufe0f\U000e0100-\U000e01ef"
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE}{_BIDI}{SELECTOR_CHARS}{TAG_CHARS}]")
# Soft hyphens sit between letters legitimately (hyphenation hints), so they do not count as wedged.
_WEDGED = re.compile("[A-Za-z][\u200b-\u200d\u2060\ufeff]+(?=[A-Za-z])")
_BIDI_OVERRIDE = re.compile("[\u202d\u202e]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_FULLWIDTH_LATIN = re.compile("[\uff21-\uff3a\uff41-\uff5a]")

# Cyrillic, Greek and IPA letters drawn like Latin ones; folded in the copy of a mostly Latin text (where they
# disguise Latin words), only inside words that mix them with Latin letters in a mostly Cyrillic or Greek text (whose
# own words must stay readable to the patterns written in those languages), and reported only inside Latin words.
_CONFUSABLES = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l",
    "ɑ": "a", "ɡ": "g", "ɩ": "i", "ɪ": "i", "ʏ": "y", "ɴ": "n", "ʀ": "r", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "ω": "w", "ϲ": "c", "ј́": "j",
}
# Capitals too ("Ιgnore" with a Greek capital iota): folding runs before lower-casing.
_CONFUSABLES.update({key.upper(): value for key, value in list(_CONFUSABLES.items()) if len(key.upper()) == 1 and
                     key.upper() != key and not key.upper().isascii()})
_CONFUSABLE_TABLE = str.maketrans({key: value for key, value in _CONFUSABLES.items() if len(key) == 1})
_CONFUSABLE_CLASS = "".join(key for key in _CONFUSABLES if len(key) == 1)
_CONFUSABLE_ANY = re.compile(f"[{_CONFUSABLE_CLASS}]")
# Any character the steps below act on before normalisation (surrogates, invisible characters, fullwidth Latin,
# confusables): one scan, so ordinary accented or typographic text skips the four searches.
_SUSPECT = re.compile(f"[\ud800-\udfff{_INVISIBLE}{_BIDI}{SELECTOR_CHARS}{TAG_CHARS}"
                      f"\uff21-\uff3a\uff41-\uff5a{_CONFUSABLE_CLASS}]")
_CYRILLIC_GREEK = re.compile("[\u0370-\u03ff\u0400-\u052f]")
_LATIN_LETTER = re.compile("[a-zA-Z]")
_WORD = re.compile(r"\w+")


def _fold_mixed_word(match: re.Match[str]) -> str:
    word = match.group()
    return word.translate(_CONFUSABLE_TABLE) if _LATIN_LETTER.search(word) else word


_MIXED_SCRIPT = re.compile(f"[a-zA-Z][{_CONFUSABLE_CLASS}]|[{_CONFUSABLE_CLASS}][a-zA-Z]")

_LEET_TABLE = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
# A digit or symbol standing for a letter between two letters ("1gn0re", "pr0mpt"); fixed width, so linear.
_LEET = re.compile(r"[013457@$](?:(?<=[a-z].)(?=[a-z])|(?<!\w.)(?=[a-z]{2}))")

# Runs of single characters separated the same way ("i g n o r e", "i.g.n.o.r.e", "i-g-n-o-r-e"). The repeated
# group is a word character followed by separators, two disjoint classes, so there is one way to match a run.
_SPACED_RUN = re.compile(r"(?<!\w)(?:\w(?!\w)[ .\-_*|~+]{1,6}){4,}\w(?!\w)")
# What every such run holds (its second to fourth letters, each between separators): a scan that can skip ahead to
# the separators, so text without it is not tried at every position.
_SPACED_HINT = re.compile(r"[ .\-_*|~+]\w[ .\-_*|~+]{1,6}\w[ .\-_*|~+]{1,6}\w[ .\-_*|~+]")
_SEPARATOR = re.compile(r"[ .\-_*|~+]+")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Folded:
    """The folded copy and the obfuscation codes (with how many instances) found on the way."""

    text: str
    leet: str | None
    obfuscations: dict[str, int]


def _collapse_spaced(match: re.Match[str]) -> str:
    run = match.group()
    gaps = _SEPARATOR.findall(run)
    letters = _SEPARATOR.split(run)
    # The commonest gap separates letters; any other gap separates words.
    common = max(set(gaps), key=gaps.count)
    out = [letters[0]]
    for gap, letter in zip(gaps, letters[1:], strict=False):
        out.append(("" if gap == common else " ") + letter)
    return "".join(out)


def fold(text: str) -> Folded:
    """A lower-case, NFKC, confusable-folded copy with invisible characters removed and spaced-out letters joined."""
    obfuscations: dict[str, int] = {}
    if not text.isascii():
        suspect = _SUSPECT.search(text) is not None
        if suspect:
            text = _SURROGATE.sub("\ufffd", text)
            if _INVISIBLE_RE.search(text):
                wedged = len(_WEDGED.findall(text))
                if wedged >= 3:
                    obfuscations["zero_width"] = wedged
                if _BIDI_OVERRIDE.search(text):
                    obfuscations["bidi"] = 1
                text = _INVISIBLE_RE.sub("", text)
            if _FULLWIDTH_LATIN.search(text):
                fullwidth = len(_FULLWIDTH_LATIN.findall(text))
                if fullwidth >= 8:
                    obfuscations["fullwidth"] = fullwidth
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
            suspect = True  # normalisation can make confusables
        if suspect and _CONFUSABLE_ANY.search(text):
            mixed = len(_MIXED_SCRIPT.findall(text))
            if mixed >= 2:
                obfuscations["homoglyph"] = mixed
            if len(_CYRILLIC_GREEK.findall(text)) > len(_LATIN_LETTER.findall(text)):
                text = _WORD.sub(_fold_mixed_word, text)
            else:
                text = text.translate(_CONFUSABLE_TABLE)
    text = text.casefold()
    spaced = 0

    def collapse(match: re.Match[str]) -> str:
        nonlocal spaced
        spaced += 1
        return _collapse_spaced(match)

    if _SPACED_HINT.search(text):
        text = _SPACED_RUN.sub(collapse, text)
    if spaced:
        obfuscations["letter_spacing"] = spaced
    text = " ".join(text.split())
    leet = None
    leet_hits = len(_LEET.findall(text))
    if leet_hits >= 2:
        obfuscations["leetspeak"] = leet_hits
        leet = text.translate(_LEET_TABLE)
    return Folded(text, leet, obfuscations)
