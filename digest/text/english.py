"""English word features without NLTK data: regex tokens, sumy's stop words and Snowball stems.

sumy's `Tokenizer("english")` needs NLTK's punkt model, which cannot be downloaded here, so
words come from a regex; `sumy.nlp.stemmers.Stemmer` only uses NLTK's code, not its data.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

# Hyphenated compounds (remote-work) count as their parts, so they meet the title's words.
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['’][A-Za-z]+)*|\d+(?:[.,]\d+)*%?")


@functools.lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    from sumy.utils import get_stop_words

    return frozenset(get_stop_words("english"))


@functools.lru_cache(maxsize=1)
def _stemmer() -> Callable[[str], str]:
    from sumy.nlp.stemmers import Stemmer

    stem: Callable[[str], str] = Stemmer("english")
    return stem


def words(text: str) -> list[str]:
    """Surface words of an English sentence, as written."""
    return _WORD.findall(text)


def english_terms(text: str) -> list[str]:
    """Lowercased, stemmed content words (stop words removed): the English counterpart of
    Kiwi content morphemes."""
    stem = _stemmer()
    stops = stop_words()
    out: list[str] = []
    for word in words(text):
        lowered = word.lower().replace("’", "'")
        if lowered in stops or (len(lowered) < 2 and not lowered.isdigit()):
            continue
        out.append(stem(lowered))
    return out
