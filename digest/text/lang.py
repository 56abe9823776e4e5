"""Korean/English language detection by script share."""

from __future__ import annotations

import re

# Below this many letters the share is too noisy to trust over the source's declared language.
_MIN_LETTERS = 12
# One Hangul syllable carries roughly what 2-3 Latin letters do, so a Korean post full of
# English terms (AI, SaaS, Prompt) still counts as Korean at a fairly low syllable share.
_KO_SHARE = 0.3
_AMBIGUOUS = (0.2, 0.4)


_HANGUL = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]+")
_LATIN = re.compile("[A-Za-z]+")


def hangul_share(text: str) -> tuple[float, int]:
    """(Hangul share among Hangul+Latin letters, number of such letters)."""
    # Runs matched by a regex: a per-character Python loop cost more than the rest of
    # language detection on a long post.
    hangul = sum(map(len, _HANGUL.findall(text)))
    latin = sum(map(len, _LATIN.findall(text)))
    total = hangul + latin
    return (hangul / total if total else 0.0), total


def detect_language(text: str, hint: str | None = None) -> str:
    """Return "ko" or "en" for `text`.

    `hint` (e.g. the feed's declared language) decides when the text is too short or its share
    falls in the ambiguous band; otherwise the text wins, because feeds often declare one
    language for everything they publish.
    """
    hint = _normalize_hint(hint)
    share, letters = hangul_share(text)
    if hint and (letters < _MIN_LETTERS or _AMBIGUOUS[0] <= share <= _AMBIGUOUS[1]):
        return hint
    if letters == 0:
        return "en"
    return "ko" if share >= _KO_SHARE else "en"


def _normalize_hint(hint: str | None) -> str | None:
    if not hint:
        return None
    code = hint.strip().lower().replace("_", "-").split("-", 1)[0]
    if code in ("ko", "kor", "korean"):
        return "ko"
    if code in ("en", "eng", "english"):
        return "en"
    return None
