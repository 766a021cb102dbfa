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
    return {""}, False


def _sequence(items: list) -> tuple[set[str], bool]:
    strings, complete = {""}, True
    for op, value in items:
        if op in _ZERO_WIDTH:
            continue
        found, whole = _item(op, value)
        strings = {head + tail for head in strings for tail in found}
        if len(strings) > _MAX_STRINGS:
            return {""}, False
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
    """One requirement: a text must hold one of `prefixes` (at the start of a word), `words` or `substrings`."""

    prefixes: frozenset[str]
    words: frozenset[str]
    substrings: frozenset[str]
    whole: frozenset[str]  # the full strings: a second, exact check once the word look-up passed


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
        for string in strings:
            stripped = string.lstrip(" ")
            lead = _LEADING_WORD.match(stripped)
            if (at_word or stripped != string) and lead:
                string = stripped
                if lead.end() < len(string):
                    words.add(lead.group())
                else:
                    prefixes.add(string[:PREFIX_CHARS])
            else:
                substrings.add(string[:4])
        key = (frozenset(prefixes), frozenset(words), frozenset(substrings), frozenset(strings))
        if substrings and chosen:
            continue  # once a word anchor is known, substring searches cost more than they save
        if key not in seen:
            seen.add(key)
            chosen.append(AnchorSet(*key))
    return chosen


class Prefilter:
    """Which of a list of patterns can match a text, decided from its words and a few substring searches."""

    def __init__(self, patterns: list[str]) -> None:
        self.requirements: list[frozenset[int]] = []
        self.by_prefix: dict[str, list[int]] = {}
        self.by_word: dict[str, list[int]] = {}
        self.by_substring: dict[str, list[int]] = {}
        users: dict[int, list[int]] = {}
        self.whole: list[tuple[str, ...]] = []
        count = 0
        for index, pattern in enumerate(patterns):
            ids = []
            for anchors in anchor_sets(pattern):
                for table, strings in ((self.by_prefix, anchors.prefixes), (self.by_word, anchors.words),
                                       (self.by_substring, anchors.substrings)):
                    for string in strings:
                        table.setdefault(string, []).append(count)
                users.setdefault(count, []).append(index)
                exact = anchors.words | {prefix for prefix in anchors.prefixes if len(prefix) < PREFIX_CHARS}
                # Strings the look-up already matched exactly need no second check.
                self.whole.append(() if anchors.whole <= exact else tuple(sorted(anchors.whole, key=len)))
                ids.append(count)
                count += 1
            self.requirements.append(frozenset(ids))
        self.users = users
        self.always = [index for index, ids in enumerate(self.requirements) if not ids]
        # Most words of ordinary text satisfy no anchor: remembering each word's answer makes a long document's
        # windows cost one dictionary look-up per distinct word.
        self._by_token: dict[str, tuple[int, ...]] = {}
        self._substrings = tuple(item for item in self.by_substring.items() if item[0].isascii())
        self._other_substrings = tuple(item for item in self.by_substring.items() if not item[0].isascii())

    def _token_anchors(self, token: str) -> tuple[int, ...]:
        """The anchor sets one word satisfies (as itself, or by its first 1..PREFIX_CHARS characters); memoised."""
        ids = self._by_token.get(token)
        if ids is None:
            found = set(self.by_word.get(token, ()))
            for cut in _CUTS:
                found.update(self.by_prefix.get(cut(token), ()))
            ids = tuple(found)
            if len(self._by_token) >= TOKEN_CACHE_SIZE:
                self._by_token.clear()  # bounded memory whatever vocabulary flows through
            self._by_token[token] = ids
        return ids

    def present(self, folded: str, tokens: set[str]) -> set[int]:
        """Ids of the anchor sets that have a member in `folded` (whose distinct words are `tokens`)."""
        found: set[int] = set()
        lookup = self._by_token.get
        for token in tokens:
            ids = lookup(token)
            if ids is None:
                ids = self._token_anchors(token)
            if ids:
                found.update(ids)
        for string, ids in self._substrings if folded.isascii() else self._substrings + self._other_substrings:
            if string in folded:
                found.update(ids)
        return found

    def candidates(self, folded: str, tokens: set[str] | None = None) -> list[int]:
        """Indexes of the patterns whose every anchor set is present, in their original order."""
        found = self.present(folded, set(_TOKEN.findall(folded)) if tokens is None else tokens)
        touched = set(self.always)
        for anchor in found:
            touched.update(self.users[anchor])
        requirements, whole = self.requirements, self.whole
        return sorted(
            index for index in touched
            if requirements[index] <= found
            and all(not whole[anchor] or any(string in folded for string in whole[anchor])
                    for anchor in requirements[index])
        )
