"""Literal anchors of a regular expression: strings without which it cannot match, so a pattern is tried only on text
that holds them.

An anchor set is derived from the parsed pattern: a run of required items whose every match starts with one of a
few literal strings (`\\b(?:ignore|disregard)\\W+...` needs "ignore" or "disregard"). A pattern may have several
such sets; it is tried only when each of them has a member in the text. Word anchors (after `\\b` or a non-word
run) are looked up among the text's words and their prefixes, other anchors by substring search.
"""

import operator
import re
import re._constants as sre_constants
import re._parser as sre_parser
from dataclasses import dataclass

PREFIX_CHARS = 4  # word anchors are compared on their first few characters: cheap, and still rare in plain prose
_MAX_STRINGS = 96
_MAX_SETS = 4
_TOKEN = re.compile(r"\w+")
TOKEN_CACHE_SIZE = 200_000
_CUTS = tuple(operator.itemgetter(slice(0, length)) for length in range(1, PREFIX_CHARS + 1))
_LEADING_WORD = re.compile(r"\w+")

_AT = sre_constants.AT
_ZERO_WIDTH = {sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT}
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}
_NOT_WORD = {sre_constants.CATEGORY_NOT_WORD, sre_constants.CATEGORY_SPACE}


def _class_chars(items: list) -> set[str] | None:
    """The characters of a small positive character class, or None."""
    chars: set[str] = set()
    for op, value in items:
        if op is sre_constants.LITERAL:
            chars.add(chr(value))
        elif op is sre_constants.RANGE and value[1] - value[0] < 4:
            chars.update(chr(code) for code in range(value[0], value[1] + 1))
        else:
            return None
    return chars if len(chars) <= 4 else None


def _item(op, value) -> tuple[set[str], bool]:
    """(strings every match of the item starts with, whether the item is exactly one of them)."""
    if op is sre_constants.LITERAL:
        return {chr(value)}, True
    if op is sre_constants.IN:
        chars = _class_chars(value)
        return (chars, True) if chars else ({""}, False)
    if op is sre_constants.SUBPATTERN:
        return _sequence(list(value[-1]))
    if op is sre_constants.ATOMIC_GROUP:
        return _sequence(list(value))
    if op is sre_constants.BRANCH:
        strings: set[str] = set()
        complete = True
        for alternative in value[1]:
            found, whole = _sequence(list(alternative))
            strings |= found
            complete = complete and whole
        return strings, complete
    if op in _REPEATS and value[0] >= 1:
        found, whole = _sequence(list(value[2]))
        return found, whole and value[0] == value[1] == 1
    if op in _REPEATS and value[1] == 1:  # optional: nothing, or one of its strings
        found, whole = _sequence(list(value[2]))
        return found | {""}, whole
    return {""}, False


def _sequence(items: list) -> tuple[set[str], bool]:
    strings, complete = {""}, True
    for op, value in items:
        if op in _ZERO_WIDTH:
            continue
        found, whole = _item(op, value)
        longer = {head + tail for head in strings for tail in found}
        if len(longer) > _MAX_STRINGS:
            return strings, False  # every match still starts with one of the shorter strings
        strings = longer
        if not whole:
            return strings, False
    return strings, complete


def _ends_non_word(op, value) -> bool:
    """Whether every match of the item ends with a non-word character."""
    if op is sre_constants.IN:
        return all(kind is sre_constants.CATEGORY and category in _NOT_WORD for kind, category in value)
    if op is sre_constants.LITERAL:
        return not (chr(value).isalnum() or chr(value) == "_")
    if op in _REPEATS and value[0] >= 1:
        return bool(value[2]) and _ends_non_word(*list(value[2])[-1])
    if op is sre_constants.SUBPATTERN:
        items = list(value[-1])
        return bool(items) and _ends_non_word(*items[-1])
    if op is sre_constants.BRANCH:
        return all(list(alternative) and _ends_non_word(*list(alternative)[-1]) for alternative in value[1])
    return False


def _word_start(items: list, index: int) -> bool:
    """Whether item `index` can only begin at the start of a word (it follows \\b, ^ or a non-word character)."""
    if index == 0:
        return False
    op, value = items[index - 1]
    if op is _AT:
        return value in (sre_constants.AT_BOUNDARY, sre_constants.AT_BEGINNING, sre_constants.AT_BEGINNING_STRING)
    if op in _REPEATS and value[0] == 0:  # optional: either its last character or what precedes it comes before
        inner = list(value[2])
        return bool(inner) and _ends_non_word(*inner[-1]) and _word_start(items, index - 1)
    return _ends_non_word(op, value)


@dataclass(frozen=True)
class AnchorSet:
    """One requirement: a text must hold one of `prefixes` (at the start of a word), `words` or `substrings`.

    `whole` are the full strings; each is also filed by how a text is checked for it exactly: `cores` (a whole word
    or the start of one: some word of the text begins with it), `leads` (a word then more: the word is one of the
    text's and the string occurs) and `others` (the string occurs anywhere).
    """

    prefixes: frozenset[str]
    words: frozenset[str]
    substrings: frozenset[str]
    whole: frozenset[str]
    cores: frozenset[str] = frozenset()
    leads: frozenset[tuple[str, str]] = frozenset()
    others: frozenset[str] = frozenset()


def anchor_sets(pattern: str) -> list[AnchorSet]:
    """The anchor sets of a pattern (empty list: no usable anchor, always try the pattern)."""
    items = list(sre_parser.parse(pattern))
    if len(items) == 1 and items[0][0] is sre_constants.SUBPATTERN:
        items = list(items[0][1][-1])
    candidates = []
    for index in range(len(items)):
        if items[index][0] in _ZERO_WIDTH:
            continue
        strings, _ = _sequence(items[index:])
        if not strings or "" in strings:
            continue
        shortest = min(len(string) for string in strings)
        if any(len(string) < 2 and string.isalnum() for string in strings):
            continue
        at_word = _word_start(items, index)
        candidates.append((not at_word, -min(shortest, PREFIX_CHARS), len(strings), index, strings, at_word))
    chosen, seen = [], set()
    for *_, strings, at_word in sorted(candidates, key=lambda item: item[:4]):
        if len(chosen) >= _MAX_SETS:
            break
        prefixes, words, substrings = set(), set(), set()
        cores, leads, others = set(), set(), set()
        for string in strings:
            stripped = string.lstrip(" ")
            lead = _LEADING_WORD.match(stripped)
            if (at_word or stripped != string) and lead:
                # Every match has this string where a word starts: the text has a word beginning with it.
                if lead.end() < len(stripped):
                    words.add(lead.group())
                    leads.add((lead.group(), string))
                else:
                    prefixes.add(stripped[:PREFIX_CHARS])
                    cores.add(stripped)
            else:
                substrings.add(string[:4])
                others.add(string)
        key = (frozenset(prefixes), frozenset(words), frozenset(substrings), frozenset(strings))
        if substrings and chosen:
            continue  # once a word anchor is known, substring searches cost more than they save
        if key not in seen:
            seen.add(key)
            chosen.append(AnchorSet(*key, frozenset(cores), frozenset(leads), frozenset(others)))
    return chosen


def alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of a pattern (`a|b|c`), each a pattern of its own; [pattern] if it has none.

    A text has a match of the pattern exactly when it has one of some alternative, so each can be prefiltered and
    searched alone: an alternative often has anchors the whole lacks, or a literal start the engine skips ahead to.
    """
    parts, depth, start, index, in_class = [], 0, 0, 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            index += 1 if pattern.startswith("^", index + 1) else 0
            index += 1 if pattern.startswith("]", index + 1) else 0  # a leading "]" is a member
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and not depth:
            parts.append(pattern[start:index])
            start = index + 1
        index += 1
    parts.append(pattern[start:])
    if len(parts) < 2:
        return [pattern]
    # Only when the parser reads the same alternatives (and nothing refers back to a group).
    items = list(sre_parser.parse(pattern))
    if (len(items) != 1 or items[0][0] is not sre_constants.BRANCH or len(items[0][1][1]) != len(parts)
            or re.compile(pattern).groups or any(re.compile(part).flags != re.compile(pattern).flags for part in parts)):
        return [pattern]
    return parts


class Prefilter:
    """Which of a list of patterns can match a text, decided from its words and a few substring searches.

    A word is looked up once (memoised): the anchor sets it satisfies outright (it begins with one of their word
    strings) and those whose longer strings it may open. Anchor sets are bits of an int, so a window's work is a
    few set and integer operations over its distinct words, then an exact check (substring searches) of the anchor
    sets a candidate pattern still needs, each done at most once per text.
    """

    def __init__(self, patterns: list[str]) -> None:
        self.requirements: list[frozenset[int]] = []
        self._cores: dict[str, list[tuple[str, int]]] = {}  # first PREFIX_CHARS characters -> (word string, id)
        self._leads: dict[str, int] = {}  # leading word of a longer string -> mask of ids
        # Per id: the longer strings grouped by the words a text must have for them, then strings searched anywhere.
        self._lead_strings: list[tuple[tuple[frozenset[str], tuple[str, ...]], ...]] = []
        self._others: list[tuple[str, ...]] = []
        count = 0
        # Units: the patterns' top-level alternatives, in order; a pattern is a candidate when one of its units is.
        self.units: list[tuple[int, str]] = [(index, part) for index, pattern in enumerate(patterns)
                                             for part in alternatives(pattern)]
        for _, pattern in self.units:
            ids = []
            for anchors in anchor_sets(pattern):
                for core in anchors.cores:
                    self._cores.setdefault(core[:PREFIX_CHARS], []).append((core, count))
                for lead in {lead for lead, _ in anchors.leads}:
                    self._leads[lead] = self._leads.get(lead, 0) | 1 << count
                groups: dict[frozenset[str], list[str]] = {}
                for _, string in sorted(anchors.leads, key=lambda pair: (len(pair[1]), pair[1])):
                    groups.setdefault(frozenset(_whole_words(string)), []).append(string)
                self._lead_strings.append(tuple((words, tuple(strings)) for words, strings in groups.items()))
                self._others.append(tuple(sorted(anchors.others, key=len)))
                ids.append(count)
                count += 1
            self.requirements.append(frozenset(ids))  # per unit
        self._units = tuple((unit, sum(1 << anchor for anchor in ids), tuple(sorted(ids)))
                            for unit, ids in enumerate(self.requirements))
        self._required = tuple(required for _, required, _ in self._units)
        # Most words of ordinary text satisfy no anchor: remembering each word's answer makes a long document's
        # windows cost a few set operations over their distinct words.
        self._by_token: dict[str, tuple[int, int]] = {}
        self._hit_tokens: set[str] = set()
        # Anchor sets with strings searched anywhere count as present until a candidate needs them checked.
        self._searched = sum(1 << anchor for anchor, strings in enumerate(self._others) if strings)
        # Those whose only strings are non-ASCII (Cyrillic, CJK, Hangul) fail at once in a text without the first
        # character of any of them.
        foreign = [anchor for anchor, strings in enumerate(self._others)
                   if strings and not self._lead_strings[anchor] and not any(string.isascii() for string in strings)]
        self._foreign = sum(1 << anchor for anchor in foreign)
        self._foreign_first = re.compile("[" + "".join(sorted({re.escape(string[0]) for anchor in foreign
                                                               for string in self._others[anchor]})) + "]")

    def _learn(self, token: str) -> None:
        """Remember which anchor sets one word satisfies (it begins with one of their word strings) or may open."""
        full = 0
        for cut in _CUTS:
            for core, anchor in self._cores.get(cut(token), ()):
                if token.startswith(core):
                    full |= 1 << anchor
        lead = self._leads.get(token, 0)
        self._by_token[token] = (full, lead)
        if full or lead:
            self._hit_tokens.add(token)

    def _verify(self, anchor: int, folded: str, tokens: set[str]) -> bool:
        """The exact check of an anchor set no word satisfied outright: one of its longer strings occurs."""
        for words, strings in self._lead_strings[anchor]:
            if words <= tokens and any(string in folded for string in strings):
                return True
        return any(string in folded for string in self._others[anchor])

    def candidates(self, folded: str, tokens: set[str] | None = None) -> list[int]:
        """Indexes of the patterns that have a unit whose every anchor set is present, in their original order."""
        units = self.units
        return sorted({units[unit][0] for unit in self.candidate_units(folded, tokens)})

    def candidate_units(self, folded: str, tokens: set[str] | None = None) -> list[int]:
        """Indexes (into `units`) of the units whose every anchor set is present, in their original order."""
        if tokens is None:
            tokens = set(_TOKEN.findall(folded))
        by_token = self._by_token
        new = tokens.difference(by_token)
        if new:
            if len(by_token) + len(new) > TOKEN_CACHE_SIZE:
                by_token.clear()  # bounded memory whatever vocabulary flows through
                self._hit_tokens.clear()
                new = tokens
            for token in new:
                self._learn(token)
        passed, maybe = 0, self._searched
        for token in tokens.intersection(self._hit_tokens):
            full, lead = by_token[token]
            passed |= full
            maybe |= lead
        found = passed | maybe
        failed = self._foreign if folded.isascii() or not self._foreign_first.search(folded) else 0
        chosen = []
        units = self._units
        for index in [unit for unit, required in enumerate(self._required) if found & required == required]:
            unchecked = units[index][1] & ~passed
            if unchecked:
                if unchecked & failed:
                    continue
                for anchor in units[index][2]:
                    if unchecked >> anchor & 1:
                        if self._verify(anchor, folded, tokens):
                            passed |= 1 << anchor
                        else:
                            failed |= 1 << anchor
                            break
                else:
                    chosen.append(index)
                continue
            chosen.append(index)
        return chosen


def _whole_words(string: str) -> tuple[str, ...]:
    """The words of a string that starts a word: all but a last one the string may cut short (each is a word of a
    text the string occurs in at a word start)."""
    words = _TOKEN.findall(string)
    if words and _TOKEN.fullmatch(string[-1]):
        words = words[:-1]
    return tuple(words)
