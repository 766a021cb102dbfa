"""Finding encoded or smuggled spans (base64/32, hex, Morse, NATO, Braille, ROT13, Atbash, reversal, tag and
variation-selector characters) and decoding them to readable text, within fixed bounds of size and count."""

import base64
import binascii
import re

from documents.screening.normalize import SELECTOR_CHARS, TAG_CHARS

MAX_SPAN_CHARS = 4096  # longer spans are decoded from their start only
MAX_SPANS = 6  # per method and text
MIN_DECODED_WORDS = 3

# Most patterns open with a character class (a look-behind, if any, comes after the first character), so the regular
# expression engine skips ahead to the characters that can start a match instead of trying every position. Base64
# characters are most of any text, so that pattern keeps its look-behind first: it fails at once inside a word.
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}")
_BASE32 = re.compile(r"[A-Z2-7](?<![A-Z2-7].)[A-Z2-7]{15,}={0,6}")
_HEX_TIGHT = re.compile(r"[0-9A-Fa-f](?<![0-9A-Fa-f].)[0-9A-Fa-f]{15,}(?![0-9A-Fa-f])")
_HEX_SPACED = re.compile(r"[0-9A-Fa-f](?<![0-9A-Fa-f].)[0-9A-Fa-f][ :,](?:[0-9A-Fa-f]{2}[ :,]){5,}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])")
_HEX_ESCAPED = re.compile(r"\\x[0-9A-Fa-f]{2}(?:\\x[0-9A-Fa-f]{2}){5,}")
_MORSE_MARK = "[.\\-\u2022\u2013\u2014_]"
_MORSE = re.compile(f"{_MORSE_MARK}{_MORSE_MARK}{{0,7}}[ /|]{{1,5}}(?:{_MORSE_MARK}{{1,8}}[ /|]{{1,5}}){{4,}}{_MORSE_MARK}{{1,8}}")
_BRAILLE = re.compile("[\u2800-\u28ff][\u2800-\u28ff ]{7,}")
_TAGS = re.compile(f"[{TAG_CHARS}][{TAG_CHARS}]{{5,}}")
_SELECTORS = re.compile(f"[{SELECTOR_CHARS}][{SELECTOR_CHARS}]{{5,}}")
# A character any of the three above needs: one scan rules all of them out in ordinary non-ASCII text.
_SMUGGLING_HINT = re.compile(f"[\u2800-\u28ff{SELECTOR_CHARS}{TAG_CHARS}]")
_WORD = re.compile(r"[^\W\d_]{2,}")
_LETTER_OR_SPACE = re.compile(r"[^\W\d_ ]| ")
_UNPRINTABLE = re.compile("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\ufffd\\u200b-\\u200f\\u2028-\\u202e\\ufeff]")
# Anything a run decoder could read: a long run of base64/hex characters, spaced or escaped hex, Morse.
_ENCODED_HINT = re.compile(r"[A-Za-z0-9+/_=-]{16}|[0-9A-Fa-f]{2}[ :,][0-9A-Fa-f]{2}[ :,][0-9A-Fa-f]{2}[ :,]|\\x[0-9A-Fa-f]{2}|"
                           "[.\\-\u2022\u2013\u2014_]{1,8}[ /|]{1,5}[.\\-\u2022\u2013\u2014_]{1,8}[ /|]{1,5}[.\\-\u2022\u2013\u2014_]")

_MORSE_CODE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g", "....": "h", "..": "i",
    ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n", "---": "o", ".--.": "p", "--.-": "q", ".-.": "r",
    "...": "s", "-": "t", "..-": "u", "...-": "v", ".--": "w", "-..-": "x", "-.--": "y", "--..": "z",
    "-----": "0", ".----": "1", "..---": "2", "...--": "3", "....-": "4", ".....": "5", "-....": "6", "--...": "7",
    "---..": "8", "----.": "9", ".-.-.-": ".", "--..--": ",", "..--..": "?", ".----.": "'", "-.-.--": "!",
    "-..-.": "/", "---...": ":", ".-..-.": '"', "-....-": "-",
}
_MORSE_DASHES = str.maketrans({"\u2022": ".", "\u2013": "-", "\u2014": "-", "_": "-"})
_NATO = {
    "alfa": "a", "alpha": "a", "bravo": "b", "charlie": "c", "delta": "d", "echo": "e", "foxtrot": "f", "golf": "g",
    "hotel": "h", "india": "i", "juliett": "j", "juliet": "j", "kilo": "k", "lima": "l", "mike": "m",
    "november": "n", "oscar": "o", "papa": "p", "quebec": "q", "romeo": "r", "sierra": "s", "tango": "t",
    "uniform": "u", "victor": "v", "whiskey": "w", "whisky": "w", "xray": "x", "x-ray": "x", "yankee": "y",
    "zulu": "z",
}
_NATO_WORD = re.compile(r"[a-z]+(?:-ray)?", re.IGNORECASE)
# A cheap count before the word-by-word walk: text without six code words has no run of six.
_NATO_HINT = re.compile(r"(?i)\b(?:alfa|alpha|bravo|charlie|delta|echo|foxtrot|golf|hotel|india|juliett?|kilo|lima|mike|"
                        r"november|oscar|papa|quebec|romeo|sierra|tango|uniform|victor|whiske?y|x-?ray|yankee|zulu)\b")
# Grade-1 Braille letters, a few punctuation cells; the capital sign is dropped.
_BRAILLE_TABLE = str.maketrans({
    "⠁": "a", "⠃": "b", "⠉": "c", "⠙": "d", "⠑": "e", "⠋": "f", "⠛": "g", "⠓": "h", "⠊": "i", "⠚": "j",
    "⠅": "k", "⠇": "l", "⠍": "m", "⠝": "n", "⠕": "o", "⠏": "p", "⠟": "q", "⠗": "r", "⠎": "s", "⠞": "t",
    "⠥": "u", "⠧": "v", "⠺": "w", "⠭": "x", "⠽": "y", "⠵": "z", "⠠": "", "⠲": ".", "⠦": "?", "⠂": ",",
    "⠄": "'", "⠖": "!", "⠤": "-", "⠀": " ",
})
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()
_ROT13 = str.maketrans(_LOWER + _UPPER, _LOWER[13:] + _LOWER[:13] + _UPPER[13:] + _UPPER[:13])
_ATBASH = str.maketrans(_LOWER + _UPPER, _LOWER[::-1] + _UPPER[::-1])
# Function words of the languages screened; a text whose letters are shifted or reversed has almost none.
STOPWORDS = frozenset(
    "the a an and or of to in on is are was were be you your i me my it this that what how why who with for not no "
    "do does all any from as at by if then now just say print tell give show me we they he she them our will can "
    "der die das und ist nicht ich du sie ein eine zu mit auf den dem des wie was wer bitte alle "
    "el la los las y es que de en un una por para con tu yo le les et est une pour vous il che di è non".split()
)

# The words that each shift (all three undo themselves) turns into a function word.
_ROT13_STOPWORDS = frozenset(word.translate(_ROT13) for word in STOPWORDS)
_ATBASH_STOPWORDS = frozenset(word.translate(_ATBASH) for word in STOPWORDS)
_REVERSED_STOPWORDS = frozenset(word[::-1] for word in STOPWORDS)


def readable(text: str) -> bool:
    """Whether decoded text looks like language: mostly printable, mostly letters and spaces, several words."""
    if not text:
        return False
    if not text.isprintable() and len(_UNPRINTABLE.findall(text)) > 0.1 * len(text):
        return False
    letters = len(_LETTER_OR_SPACE.findall(text))
    return letters >= 0.7 * len(text) and len(_WORD.findall(text)) >= MIN_DECODED_WORDS


_LETTERS = re.compile(r"[^\W\d_]+")


# ASCII characters that are not letters, as spaces: an ASCII text's runs of letters are then its split().
_ASCII_NOT_LETTER = str.maketrans({chr(code): " " for code in range(128) if not _LETTERS.match(chr(code))})


def _letter_runs(text: str) -> list[str]:
    return text.translate(_ASCII_NOT_LETTER).split() if text.isascii() else _LETTERS.findall(text)


def stopword_count(text: str) -> int:
    return sum(map(STOPWORDS.__contains__, _letter_runs(text.lower())))


def _bytes_text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _spans(pattern: re.Pattern[str], text: str) -> list[str]:
    spans = []
    for match in pattern.finditer(text):
        spans.append(match.group()[:MAX_SPAN_CHARS])
        if len(spans) >= MAX_SPANS:
            break
    return spans


def _base64(span: str) -> str:
    cleaned = span.rstrip("=").replace("-", "+").replace("_", "/")
    cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
    try:
        return _bytes_text(base64.b64decode(cleaned + "=" * (-len(cleaned) % 4)))
    except (binascii.Error, ValueError):
        return ""


def _base32(span: str) -> str:
    cleaned = span.rstrip("=")
    while len(cleaned) % 8 not in (0, 2, 4, 5, 7):  # lengths a base32 encoder can produce
        cleaned = cleaned[:-1]
    try:
        return _bytes_text(base64.b32decode(cleaned + "=" * (-len(cleaned) % 8)))
    except (binascii.Error, ValueError):
        return ""


def _hex(span: str) -> str:
    digits = "".join(char for char in span if char in "0123456789abcdefABCDEF")
    try:
        return _bytes_text(bytes.fromhex(digits[: len(digits) - len(digits) % 2]))
    except ValueError:
        return ""


def _morse(span: str) -> str:
    words = []
    for word in re.split(r" {2,}|\s*[/|]\s*", span.translate(_MORSE_DASHES)):
        words.append("".join(_MORSE_CODE.get(letter, "") for letter in word.split()))
    return " ".join(word for word in words if word)


def _nato(text: str) -> list[str]:
    """Runs of at least six NATO code words, spelled out."""
    runs, current = [], []
    for match in _NATO_WORD.finditer(text[: MAX_SPAN_CHARS * 8]):
        letter = _NATO.get(match.group().lower())
        if letter:
            current.append(letter)
        else:
            if len(current) >= 6:
                runs.append("".join(current))
            current = []
    if len(current) >= 6:
        runs.append("".join(current))
    return runs[:MAX_SPANS]


def _smuggled(span: str, base: int) -> str:
    return "".join(chr(ord(char) - base) for char in span if 0x20 <= ord(char) - base < 0x7F)


def _selectors(span: str) -> list[str]:
    """Both common byte mappings: supplement selectors as byte + 16 (the compact one) or as the byte itself."""
    compact, direct = bytearray(), bytearray()
    for char in span:
        point = ord(char)
        if point < 0xFE10:
            compact.append(point - 0xFE00)
            direct.append(point - 0xFE00)
        else:
            compact.append(min(255, point - 0xE0100 + 16))
            direct.append(min(255, point - 0xE0100))
    return [_bytes_text(bytes(compact)), _bytes_text(bytes(direct))]


def _decode_runs(text: str, keep) -> None:
    """Base64, base32, hex and Morse runs: tried only once a cheap search saw something shaped like one."""
    for span in _spans(_BASE64, text):
        if not span.isalpha() or not span.islower():  # a long lower-case word is a word
            keep("base64", _base64(span))
    for span in _spans(_BASE32, text):
        keep("base32", _base32(span))
    for pattern in (_HEX_TIGHT, _HEX_SPACED, _HEX_ESCAPED):
        for span in _spans(pattern, text):
            keep("hex", _hex(span.replace("\\x", "")))
    for span in _spans(_MORSE, text):
        keep("morse", _morse(span))


def decode_all(text: str, folded: str, *, shifted: bool = True) -> list[tuple[str, str]]:
    """(method, decoded text) for every readable payload found in `text` (the original) or `folded` (its copy).

    `shifted=False` leaves out the letter shifts and reversal (a document tries those window by window)."""
    found: list[tuple[str, str]] = []

    def keep(method: str, decoded: str) -> None:
        decoded = decoded.strip()
        if readable(decoded):
            found.append((method, decoded))

    if not text.isascii() and _SMUGGLING_HINT.search(text):
        for span in _spans(_TAGS, text):
            keep("unicode_tags", _smuggled(span, 0xE0000))
        for span in _spans(_SELECTORS, text):
            for decoded in _selectors(span):
                keep("variation_selectors", decoded)
        for span in _spans(_BRAILLE, text):
            keep("braille", span.translate(_BRAILLE_TABLE))
    if _ENCODED_HINT.search(text):
        _decode_runs(text, keep)
    for run in _nato(text) if len(_NATO_HINT.findall(text, 0, MAX_SPAN_CHARS * 8)) >= 6 else ():
        if len(run) >= 8:  # spelled out without word breaks, so judged by length rather than by words
            found.append(("nato", run))
    # Letter substitutions and reversal turn function words into nonsense; a decoding that gains several is real.
    if not shifted:
        return found
    sample = folded[: MAX_SPAN_CHARS * 4]
    words = sample.split()
    if len(words) < 4:
        return found
    lowered = sample.lower()
    runs = _letter_runs(lowered)
    before = sum(map(STOPWORDS.__contains__, runs))  # stopword_count(sample)
    # Ordinary prose is full of function words already; only text with few of them can be a shifted one.
    if before >= max(3, len(words) * 0.15):
        return found
    enough = max(3, before + 3, len(words) * 0.2)
    shifts = (("rot13", lambda: sample.translate(_ROT13), _ROT13_STOPWORDS),
              ("atbash", lambda: sample.translate(_ATBASH), _ATBASH_STOPWORDS),
              ("reversed", lambda: sample[::-1], _REVERSED_STOPWORDS))
    for method, shift, shifted_stopwords in shifts:
        # A lower-case sample's shifted copy has the shifted words of the sample (letters stay letters, and stay
        # lower case), so its function words are counted on the sample's words without building the copy.
        if lowered == sample:
            count = sum(map(shifted_stopwords.__contains__, runs))
        else:
            count = stopword_count(shift())
        if count >= enough:
            found.append((method, shift()))
    return found
