"""Code templates over strings."""

from __future__ import annotations

import random
import string

from loralab.data.tasks.pycode.inputs import text_cases
from loralab.data.tasks.pycode.spec import FunctionSpec, case_rng

SEPARATORS = (" ", "-", "_", ", ", "/")
REPLACEMENTS = ("*", "#", "_", "-", ".", "0")


def count_letter(rng: random.Random) -> FunctionSpec:
    letter = rng.choice(string.ascii_lowercase + "*")
    vowels = letter == "*"
    key = f"count_letter:{'vowels' if vowels else letter}"
    chars = "aeiou" if vowels else letter
    what = "vowels (a, e, i, o, u)" if vowels else f"letters {letter!r}"
    return FunctionSpec(
        key=key,
        name="count_vowels" if vowels else f"count_letter_{letter}",
        signature="(s: str) -> int",
        summary=f"Return how many {what} s contains, ignoring case.",
        body=f"    return sum(1 for c in s.lower() if c in {chars!r})\n",
        reference=lambda s: sum(s.lower().count(c) for c in chars),
        cases=text_cases(case_rng(key)),
    )


def reverse_words(rng: random.Random) -> FunctionSpec:
    separator, case = rng.choice(SEPARATORS), rng.choice(("keep", "upper", "lower"))
    key = f"reverse_words:{separator}:{case}"
    change = {"keep": "", "upper": ".upper()", "lower": ".lower()"}[case]
    how = {"keep": "", "upper": ", in upper case", "lower": ", in lower case"}[case]

    def reference(s: str) -> str:
        text = separator.join(reversed(s.split()))
        return text.upper() if case == "upper" else text.lower() if case == "lower" else text

    return FunctionSpec(
        key=key,
        name="reverse_words",
        signature="(s: str) -> str",
        summary=f"Return the whitespace-separated words of s in reverse order, joined by {separator!r}{how}.",
        body=f"    return {separator!r}.join(s.split()[::-1]){change}\n",
        reference=reference,
        cases=text_cases(case_rng(key)),
    )


def long_words(rng: random.Random) -> FunctionSpec:
    k, listed = rng.randint(1, 8), rng.random() < 0.5
    key = f"long_words:{k}:{listed}"
    words = f"[w for w in s.split() if len(w) > {k}]"
    return FunctionSpec(
        key=key,
        name=f"words_longer_than_{k}" if listed else f"count_words_longer_than_{k}",
        signature=f"(s: str) -> {'list[str]' if listed else 'int'}",
        summary=(
            f"Return the words of s (split on whitespace) that have more than {k} characters, in order."
            if listed
            else f"Return how many words of s (split on whitespace) have more than {k} characters."
        ),
        body=f"    return {words if listed else f'len({words})'}\n",
        reference=lambda s: (list if listed else len)(list(filter(lambda w: len(w) > k, s.split()))),
        cases=text_cases(case_rng(key)),
    )


def caesar(rng: random.Random) -> FunctionSpec:
    k = rng.randint(1, 25)
    key = f"caesar:{k}"
    shifted = string.ascii_lowercase[k:] + string.ascii_lowercase[:k]
    body = (
        "    result = []\n"
        "    for c in s:\n"
        "        if 'a' <= c <= 'z':\n"
        f"            c = chr((ord(c) - ord('a') + {k}) % 26 + ord('a'))\n"
        "        result.append(c)\n"
        "    return ''.join(result)\n"
    )
    return FunctionSpec(
        key=key,
        name=f"shift_letters_by_{k}",
        signature="(s: str) -> str",
        summary=(
            f"Return s with every lowercase letter a-z moved {k} places forward in the alphabet, wrapping "
            "from z back to a; all other characters stay as they are."
        ),
        body=body,
        reference=lambda s: s.translate(str.maketrans(string.ascii_lowercase, shifted)),
        cases=text_cases(case_rng(key)),
    )


def replace_vowel(rng: random.Random) -> FunctionSpec:
    vowel, replacement = rng.choice("aeiou"), rng.choice(REPLACEMENTS)
    key = f"replace_vowel:{vowel}:{replacement}"
    return FunctionSpec(
        key=key,
        name=f"replace_{vowel}",
        signature="(s: str) -> str",
        summary=f"Return s with every {vowel!r} and {vowel.upper()!r} replaced by {replacement!r}.",
        body=f"    return s.replace({vowel!r}, {replacement!r}).replace({vowel.upper()!r}, {replacement!r})\n",
        reference=lambda s: "".join(replacement if c.lower() == vowel else c for c in s),
        cases=text_cases(case_rng(key)),
    )


def first_words(rng: random.Random) -> FunctionSpec:
    k, marker = rng.randint(1, 6), rng.choice(("...", " [more]"))
    key = f"first_words:{k}:{marker}"
    body = f"    words = s.split()\n    text = ' '.join(words[:{k}])\n    return text + {marker!r} if len(words) > {k} else text\n"
    return FunctionSpec(
        key=key,
        name=f"first_{k}_words",
        signature="(s: str) -> str",
        summary=(
            f"Return the first {k} whitespace-separated words of s joined by single spaces, followed by "
            f"{marker!r} when s has more than {k} words."
        ),
        body=body,
        reference=lambda s: " ".join(s.split()[:k]) + (marker if len(s.split()) > k else ""),
        cases=text_cases(case_rng(key)),
    )


def palindrome(rng: random.Random) -> FunctionSpec:
    letters_only = rng.random() < 0.5
    key = f"palindrome:{letters_only}"
    kept = "[c for c in s.lower() if c.isalpha()]" if letters_only else "list(s.lower())"
    rule = "considering only its letters and ignoring case" if letters_only else "ignoring case"
    cases = case_rng(key)
    return FunctionSpec(
        key=key,
        name="is_letter_palindrome" if letters_only else "is_palindrome",
        signature="(s: str) -> bool",
        summary=f"Return True if s reads the same forwards and backwards, {rule}, and False otherwise.",
        body=f"    chars = {kept}\n    return chars == chars[::-1]\n",
        reference=lambda s: _is_palindrome("".join(c for c in s.lower() if c.isalpha() or not letters_only)),
        cases=(("Racecar",), ("Never odd or even",), ("python",), ("",), ("Wow!",), (cases.choice(("noon", "abc")),)),
    )


def _is_palindrome(text: str) -> bool:
    return all(text[i] == text[-1 - i] for i in range(len(text) // 2))


TEMPLATES = (count_letter, reverse_words, long_words, caesar, replace_vowel, first_words, palindrome)
