"""What kind of text a post is, and what the ranking should weigh for it.

News is written as an inverted pyramid: the lead says who did what, and the deck restates
the title's facts near the top, so position and title overlap matter most. An essay buries
its point, so centrality matters most and position little. A list (release notes, a
checklist) is made of its items. A source can say which kind it publishes
(`[[sources]] text_kind`); otherwise the text itself is read for the signs of news
reporting: reported speech (`밝혔다`, `said`), attributions (`에 따르면`, `according to`),
datelines and bylines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

NEWS = "news"
ESSAY = "essay"
LIST = "list"
AUTO = "auto"
TEXT_KINDS = (AUTO, NEWS, ESSAY, LIST)


@dataclass(frozen=True)
class HybridWeights:
    centrality: float = 1.0
    title: float = 1.0
    position: float = 0.35
    position_decay: float = 5.0  # sentences; the prior is exp(-index / decay)
    mmr_lambda: float = 0.7  # 1.0 = no redundancy penalty


# From small grids (bench/summaries.py; bench/README-summaries.md), scored together on
# sci-news-sum-kr-50 (Korean IT and science news, annotators' summary sentences: sentence F1)
# and the English Go blog set (authors' own summaries: ROUGE-1). News keeps a mild prior that
# fades over about five sentences, enough to favour the lead without turning a report into
# its first three sentences; the annotated news summaries draw on the whole article. Essays
# and blog posts get a stronger prior that fades slowly: their authors' summaries restate the
# opening paragraphs' point more often than a middle paragraph's. Neighbouring settings are
# within noise on both sets (50 and 48 texts).
HYBRID_WEIGHTS = HybridWeights()
KIND_WEIGHTS: dict[str, HybridWeights] = {
    NEWS: HybridWeights(position=0.5, position_decay=5.0),
    ESSAY: HybridWeights(position=0.7, position_decay=10.0),
    LIST: HybridWeights(position=0.7, position_decay=10.0),
}

# Reported speech and attribution: the sentence ends of a news report.
_KO_REPORTED = re.compile(
    r"(?:밝혔|말했|전했|설명했|강조했|덧붙였|발표했|지적했|내다봤|예상했|분석했|주장했|"
    r"보도했|알렸|답했|언급했|당부했|촉구했|약속했|확인했|공개했|집계됐|나타났|조사됐)다"
    r"[.\"'”’)]*\s*$"
)
_KO_ATTRIBUTION = re.compile(r"에\s*따르면|관계자는|측은|대변인은")
_KO_DATELINE = re.compile(
    r"^\s*[\[(【][^\])】]{1,20}=\s*[^\])】]{1,15}[\])】]|[가-힣]{2,4}\s*기자\b"
)
_KO_POLITE = re.compile(r"(?:니다|세요|어요|아요|해요|에요|예요|죠|네요)[.!?\"'”’)]*\s*$")
_EN_REPORTED = re.compile(
    r"\b(?:said|says|told|according to|announced|reported|spokesperson|spokesman)\b",
    re.IGNORECASE,
)
_EN_DATELINE = re.compile(
    r"^[A-Z][A-Za-z .]{2,30}(?:,\s*[A-Z][A-Za-z .]+)?\s*(?:\([^)]+\))?\s*[—–-]{1,2}\s"
)
_EN_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I’ve|I've|my|we|we're|we’re|our)\b")


def detect_kind(sentences: Sequence[str], language: str) -> str:
    """NEWS or ESSAY, from the sentences a summary could quote (lists are told apart by the
    caller, which knows the list items)."""
    if not sentences:
        return ESSAY
    n = len(sentences)
    if language == "ko":
        reported = sum(1 for s in sentences if _KO_REPORTED.search(s))
        attributed = sum(1 for s in sentences if _KO_ATTRIBUTION.search(s))
        polite = sum(1 for s in sentences if _KO_POLITE.search(s))
        dateline = any(_KO_DATELINE.search(s) for s in sentences[:3])
        if 2 * polite > n:  # a blog's 합니다/해요 register, whatever it quotes
            return ESSAY
        signals = reported + attributed + (2 if dateline else 0)
        return NEWS if signals >= 2 and signals * 8 >= n else ESSAY
    reported = sum(1 for s in sentences if _EN_REPORTED.search(s))
    personal = sum(1 for s in sentences if _EN_FIRST_PERSON.search(s))
    dateline = bool(_EN_DATELINE.match(sentences[0]))
    if 3 * personal > n and not dateline:
        return ESSAY
    signals = reported + (2 if dateline else 0)
    return NEWS if signals >= 2 and signals * 8 >= n else ESSAY
