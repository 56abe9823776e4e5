"""Summary quality and speed benchmark.

Quality, on sci-news-sum-kr-50 (read in place, never copied into the repo): sentence-level F1
against the annotated summary sentences, and ROUGE-1/2 F over Kiwi content morphemes (a
whitespace or rouge_score tokenizer would drop or mangle Hangul), at k=3 and at k = number of
gold sentences. Speed, on the 35 seed posts: our `summarize` against stock sumy's Korean path
(konlpy Kkma + TextRank), when konlpy and a JDK are available.

    python bench/summaries.py [--data DIR] [--seeds FILE] [--all] [--no-konlpy]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.config import SummaryConfig
from digest.summarize import summarize
from digest.summarize.core import (
    HYBRID_WEIGHTS,
    Candidate,
    HybridWeights,
    candidates_from_sentences,
    rank_presplit,
    score_sentences,
)
from digest.text.kiwi import content_morphemes, get_kiwi, morphemes_of

DEFAULT_DATA = Path("/work/shared/eval/sci-news-sum-kr-50")
DEFAULT_SEEDS = Path("/work/shared/seeds/000_6afb54d03c3eef92.txt")


@dataclass(frozen=True)
class Doc:
    title: str
    sentences: list[str]
    gold: list[int]
    candidates: list[Candidate]
    title_terms: list[str]
    sentence_terms: list[list[str]]


def load_docs(data: Path) -> list[Doc]:
    folder = data / "data" if (data / "data").is_dir() else data
    docs = []
    for path in sorted(folder.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        sentences = [str(s) for s in raw["sentences"]]
        candidates = candidates_from_sentences(sentences, "ko")
        docs.append(
            Doc(
                title=raw["title"],
                sentences=sentences,
                gold=[int(i) for i in raw["summaries"]],
                candidates=candidates,
                title_terms=content_morphemes(raw["title"]),
                sentence_terms=morphemes_of(sentences),
            )
        )
    return docs


def sentence_f1(pred: Sequence[int], gold: Sequence[int]) -> float:
    hits = len(set(pred) & set(gold))
    if not hits:
        return 0.0
    p, r = hits / len(set(pred)), hits / len(set(gold))
    return 2 * p * r / (p + r)


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_f(pred: Sequence[str], ref: Sequence[str], n: int) -> float:
    a, b = _ngrams(pred, n), _ngrams(ref, n)
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0
    p, r = overlap / sum(a.values()), overlap / sum(b.values())
    return 2 * p * r / (p + r)


Ranker = Callable[[Doc, int], list[int]]


def top_k(algorithm: str, with_title: bool = False) -> Ranker:
    """Stock behaviour: sumy's score, plain top-k, no length bounds, no MMR."""

    def rank(doc: Doc, k: int) -> list[int]:
        scores = score_sentences(doc.candidates, algorithm, doc.title_terms if with_title else ())
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return sorted(order[:k])

    return rank


def hybrid(weights: HybridWeights) -> Ranker:
    def rank(doc: Doc, k: int) -> list[int]:
        return rank_presplit(
            doc.sentences,
            algorithm="hybrid",
            count=k,
            weights=weights,
            candidates=doc.candidates,
            title_terms=doc.title_terms,
        )

    return rank


def evaluate(docs: Sequence[Doc], ranker: Ranker) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for doc in docs:
        ref = [t for i in sorted(doc.gold) for t in doc.sentence_terms[i]]
        for label, k in (("3", 3), ("g", len(doc.gold))):
            pred = ranker(doc, k)
            hyp = [t for i in pred for t in doc.sentence_terms[i]]
            out.setdefault(f"F1@{label}", []).append(100 * sentence_f1(pred, doc.gold))
            out.setdefault(f"R1@{label}", []).append(rouge_f(hyp, ref, 1))
            out.setdefault(f"R2@{label}", []).append(rouge_f(hyp, ref, 2))
    return {key: statistics.mean(values) for key, values in out.items()}


def load_seed_posts(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    return [
        (lines[i + 1], lines[i + 2])
        for i, line in enumerate(lines[:-2])
        if line.strip() == "Haebom"
    ]


def speed_ours(posts: Sequence[tuple[str, str]]) -> float:
    summarize("준비 문장이다.", config=SummaryConfig())
    start = time.perf_counter()
    for title, body in posts:
        summarize(body, title=title, config=SummaryConfig())
    return time.perf_counter() - start


def speed_konlpy(posts: Sequence[tuple[str, str]]) -> tuple[float, float] | str:
    try:
        from sumy.nlp.tokenizers import Tokenizer
        from sumy.parsers.plaintext import PlaintextParser
        from sumy.summarizers.text_rank import TextRankSummarizer

        start = time.perf_counter()
        tokenizer = Tokenizer("korean")
        first = PlaintextParser.from_string("준비 문장이다. 두 번째 문장이다.", tokenizer).document
        TextRankSummarizer()(first, 1)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        for _title, body in posts:
            document = PlaintextParser.from_string(body, tokenizer).document
            TextRankSummarizer()(document, 3)
        return cold, time.perf_counter() - start
    except Exception as exc:  # konlpy or the JVM missing: report instead of failing the bench
        return f"unavailable ({type(exc).__name__}: {exc})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="sci-news-sum-kr-50 folder")
    parser.add_argument("--seeds", type=Path, default=DEFAULT_SEEDS, help="seed posts file")
    parser.add_argument("--all", action="store_true", help="also the other sumy algorithms")
    parser.add_argument(
        "--no-konlpy", action="store_true", help="skip the stock sumy+konlpy speed reference"
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    get_kiwi()
    kiwi_load = time.perf_counter() - start
    docs = load_docs(args.data)
    rows: list[tuple[str, Ranker]] = [
        ("lead-k", top_k("lead")),
        ("sumy textrank (Kiwi)", top_k("textrank")),
        ("sumy lexrank (Kiwi)", top_k("lexrank")),
        ("textrank + title (Kiwi)", hybrid(HybridWeights(position=0.0, mmr_lambda=1.0))),
    ]
    if args.all:
        rows += [
            (f"sumy {a} (Kiwi)", top_k(a, a == "edmundson"))
            for a in ("lsa", "luhn", "edmundson", "kl", "sumbasic")
        ]
    rows.append(("hybrid (default)", hybrid(HYBRID_WEIGHTS)))

    keys = ["F1@3", "R1@3", "R2@3", "F1@g", "R1@g", "R2@g"]
    print(
        f"sci-news-sum-kr-50: {len(docs)} articles; "
        "@3 = 3 sentences, @g = as many as the gold summary"
    )
    print(f"{'method':<26}" + "".join(f"{k:>8}" for k in keys))
    for name, ranker in rows:
        result = evaluate(docs, ranker)
        cells = "".join(
            f"{result[k]:>8.1f}" if k.startswith("F1") else f"{result[k]:>8.3f}" for k in keys
        )
        print(f"{name:<26}{cells}")

    posts = load_seed_posts(args.seeds)
    chars = sum(len(body) for _, body in posts)
    print(f"\nspeed: {len(posts)} seed posts, {chars:,} characters, 3 sentences each")
    warm = speed_ours(posts)
    print(
        f"{'ours (Kiwi + sumy hybrid)':<32} load {kiwi_load:6.2f}s  run {warm:6.2f}s  "
        f"{len(posts) / warm:7.2f} posts/s"
    )
    if not args.no_konlpy:
        ref = speed_konlpy(posts)
        if isinstance(ref, str):
            print(f"{'stock sumy korean (konlpy Kkma)':<32} {ref}")
        else:
            print(
                f"{'stock sumy korean (konlpy Kkma)':<32} load {ref[0]:6.2f}s  run {ref[1]:6.2f}s  "
                f"{len(posts) / ref[1]:7.2f} posts/s   -> ours is {ref[1] / warm:.0f}x faster"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
