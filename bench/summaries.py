"""Summary quality and speed benchmark.

Sentence splitting, on sci-news-sum-kr-50's articles joined back into running text (once with
". " between the sentences, once with a bare space, so that only endings mark them):
precision and recall of the boundaries, ours (`split_spans`) against Kiwi's own splitter.
Quality, on sci-news-sum-kr-50 (read in place, never copied into the repo): sentence-level F1
against the annotated summary sentences, and ROUGE-1/2 F over Kiwi content morphemes (a
whitespace or rouge_score tokenizer would drop or mangle Hangul), at k=3 and at k = number of
gold sentences. Speed, on the 35 seed posts: ours (one post at a time, and as one batch)
against stock sumy's Korean path (konlpy Kkma + TextRank, in child processes), interleaved in
time, when konlpy and a JDK are available.

    python bench/summaries.py [--data DIR] [--seeds FILE] [--all] [--no-konlpy]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import snowballstemmer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.config import SummaryConfig
from digest.summarize import SummaryRequest, summarize, summarize_batch, summarize_many
from digest.summarize.core import (
    Candidate,
    HybridWeights,
    candidates_from_sentences,
    rank_presplit,
    score_sentences,
)
from digest.text.kiwi import content_morphemes, get_kiwi, morphemes_of
from digest.text.sentences import split_spans_many

_STEM = snowballstemmer.stemmer("english")

DEFAULT_DATA = Path("/work/shared/eval/sci-news-sum-kr-50")
DEFAULT_SEEDS = Path("/work/shared/seeds/000_6afb54d03c3eef92.txt")
DEFAULT_ENGLISH = Path(__file__).resolve().parent / "data" / "english" / "go-blog.jsonl"


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


def _english_tokens(text: str) -> list[str]:
    """ROUGE tokens as rouge_score makes them with its stemmer: lowercase letters and digits,
    Porter-family stems (Snowball English)."""
    return [_STEM.stemWord(t) for t in re.findall(r"[a-z0-9]+", text.lower())]


def english(path: Path, sentences: int = 3, max_chars: int = 400) -> None:
    """ROUGE-1/2 F of each method's summary against the author's own summary, on English
    posts (bench/data/english: Go blog posts with their front-matter summaries). Every method
    goes through the product path (`summarize_batch`): the same sentence splitting, the same
    exclusions (boilerplate, headings) and the same budget; only the ranking differs."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    requests = [SummaryRequest(r["text"], r["title"], "en") for r in records]
    refs = [_english_tokens(r["summary"]) for r in records]
    print(
        f"\nEnglish: {len(records)} posts ({path.name}), reference = the author's summary; "
        f"{sentences} sentences within {max_chars} characters"
    )
    print(f"{'method':<26}{'R1':>8}{'R2':>8}{'chars':>8}")
    for name, algorithm in (
        ("lead-3", "lead"),
        ("sumy textrank", "textrank"),
        ("hybrid (default)", "hybrid"),
    ):
        config = SummaryConfig(
            algorithm=algorithm, sentences=sentences, max_chars=max_chars, language="en"
        )
        results = summarize_batch(requests, config=config)
        r1, r2, size = [], [], []
        for result, ref in zip(results, refs, strict=True):
            hyp = _english_tokens(" ".join(result.sentences))
            r1.append(rouge_f(hyp, ref, 1))
            r2.append(rouge_f(hyp, ref, 2))
            size.append(len(" ".join(result.sentences)))
        print(
            f"{name:<26}{statistics.mean(r1):>8.3f}{statistics.mean(r2):>8.3f}"
            f"{statistics.mean(size):>8.0f}"
        )


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


def hybrid(weights: HybridWeights | None) -> Ranker:
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


def _joined(sentences: Sequence[str], separator: str) -> tuple[str, set[int]]:
    """The sentences as running text, and the offsets where each (but the last) ends."""
    text, ends = "", set()
    for i, sentence in enumerate(sentences):
        text += sentence + separator.rstrip()
        if i < len(sentences) - 1:
            ends.add(len(text))
            text += " "
    return text, ends


def splitting(docs: Sequence[Doc]) -> None:
    """Boundary precision/recall on the articles joined back into running text."""
    if not docs:
        return
    print(f"\nsentence splitting: {len(docs)} articles joined into running text")
    print(f"{'joined with':<14}{'splitter':<20}{'P':>8}{'R':>8}{'F1':>8}{'missed':>8}{'extra':>8}")
    kiwi = get_kiwi()
    for label, separator in (('". "', ". "), ('" " (no dots)', " ")):
        texts, golds = zip(*(_joined(d.sentences, separator) for d in docs), strict=True)
        ours = [
            {span.end for span in spans} for spans in split_spans_many(texts, ["ko"] * len(texts))
        ]
        theirs = [{s.end for s in kiwi.split_into_sents(text)} for text in texts]
        for name, found in (("digest", ours), ("kiwi split_into_sents", theirs)):
            found = [f - {len(t)} for f, t in zip(found, texts, strict=True)]
            tp = sum(len(f & g) for f, g in zip(found, golds, strict=True))
            extra = sum(len(f - g) for f, g in zip(found, golds, strict=True))
            missed = sum(len(g - f) for f, g in zip(found, golds, strict=True))
            p, r = tp / max(1, tp + extra), tp / max(1, tp + missed)
            f1 = 2 * p * r / max(1e-9, p + r)
            print(f"{label:<14}{name:<20}{p:>8.3f}{r:>8.3f}{f1:>8.3f}{missed:>8}{extra:>8}")


def load_seed_posts(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    return [
        (lines[i + 1], lines[i + 2])
        for i, line in enumerate(lines[:-2])
        if line.strip() == "Haebom"
    ]


def time_ours_loop(posts: Sequence[tuple[str, str]]) -> float:
    """One post at a time (`summarize`), as `digest summarize FILE` does: Kiwi on one thread."""
    config = SummaryConfig()
    start = time.perf_counter()
    for title, body in posts:
        summarize(body, title=title, config=config)
    return time.perf_counter() - start


def time_kiwi_alone(posts: Sequence[tuple[str, str]]) -> float:
    """Kiwi's own analysis of the same posts in one batch, nothing else: the bound on ours."""
    kiwi = get_kiwi()
    start = time.perf_counter()
    for _ in kiwi.tokenize([body for _, body in posts], split_sents=True):
        pass
    return time.perf_counter() - start


def time_ours_batch(posts: Sequence[tuple[str, str]]) -> float:
    """All posts in one batch (`summarize_many`), as planning a digest does: Kiwi's threads."""
    start = time.perf_counter()
    summarize_many(posts, config=SummaryConfig())
    return time.perf_counter() - start


class StockSumy:
    """sumy's stock Korean path: konlpy's Kkma (a JVM) for sentences and words + TextRank."""

    def __init__(self) -> None:
        from sumy.nlp.tokenizers import Tokenizer
        from sumy.parsers.plaintext import PlaintextParser
        from sumy.summarizers.text_rank import TextRankSummarizer

        self._parser = PlaintextParser
        self._summarizer = TextRankSummarizer
        start = time.perf_counter()
        self._tokenizer = Tokenizer("korean")
        self.run(["준비 문장이다. 두 번째 문장이다."], 1)
        self.load = time.perf_counter() - start

    def run(self, bodies: Sequence[str], count: int = 3) -> float:
        start = time.perf_counter()
        for body in bodies:
            document = self._parser.from_string(body, self._tokenizer).document
            self._summarizer()(document, count)
        return time.perf_counter() - start


def stock_child(seeds: Path, first: int, last: int) -> int:
    """Run in a child process: time the stock path on posts[first:last], after warming the
    JVM on another post, and print {"load": s, "run": s} as JSON."""
    posts = load_seed_posts(seeds)
    bodies = [body for _, body in posts]
    other = [b for i, b in enumerate(bodies) if not first <= i < last][:1]
    stock = StockSumy()
    stock.run(other)  # a warm JIT, so no slice pays for a cold JVM
    print(json.dumps({"load": stock.load, "run": stock.run(bodies[first:last])}))
    return 0


def _stock_slice(seeds: Path, first: int, last: int) -> tuple[float, float]:
    script = str(Path(__file__).resolve())
    args = [sys.executable, script, "--seeds", str(seeds), "--stock-child", f"{first}:{last}"]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["load"]), float(result["run"])


def speed(
    posts: Sequence[tuple[str, str]], seeds: Path, konlpy: bool, slices: int = 3, repeats: int = 3
) -> None:
    """Side by side in one run, interleaved in time so both see the same machine load.

    The stock path runs in `slices` slices of the posts, each in a child process (a resident
    JVM's GC and JIT threads would otherwise keep stealing CPU from our runs); ours runs in
    this process over all posts (one post at a time, then as one batch), `repeats` times before
    each slice and after the last. Ours is the median of those runs (the machine is shared:
    a short run can land on a burst of someone else's work that a long one averages out), the
    stock path the sum of its slices.
    """
    summarize("준비 문장이다.", config=SummaryConfig())  # Kiwi and sumy loaded and warm
    stock: str | None = None if konlpy else "skipped (--no-konlpy)"
    if stock is None and importlib.util.find_spec("konlpy") is None:
        stock = "unavailable (konlpy is not installed)"
    rounds = slices if stock is None else 2
    size = -(-len(posts) // rounds)
    loops: list[float] = []
    batches: list[float] = []
    kiwis: list[float] = []
    stock_run = stock_load = 0.0
    for k in range(rounds + 1):
        for _ in range(repeats):
            loops.append(time_ours_loop(posts))
            batches.append(time_ours_batch(posts))
            kiwis.append(time_kiwi_alone(posts))
        if stock is None and k < rounds:
            try:
                load, run = _stock_slice(seeds, k * size, min((k + 1) * size, len(posts)))
            except subprocess.CalledProcessError as exc:  # e.g. no JDK: report, do not fail
                tail = (exc.stderr or "").strip().splitlines()[-1:]
                stock = f"unavailable ({' '.join(tail) or exc})"
                continue
            stock_load, stock_run = max(stock_load, load), stock_run + run
    loop, batch = statistics.median(loops), statistics.median(batches)
    kiwi = statistics.median(kiwis)
    n = len(posts)
    for label, runs, median in (
        ("ours, one post at a time", loops, loop),
        ("ours, one batch (digest planning)", batches, batch),
        ("Kiwi alone, one batch (the bound)", kiwis, kiwi),
    ):
        print(
            f"{label:<34} run {median:6.2f}s  {n / median:7.2f} posts/s  "
            f"(median of {len(runs)}: {min(runs):.2f}-{max(runs):.2f}s)"
        )
    if stock is None:
        print(
            f"{'stock sumy korean (konlpy Kkma)':<34} run {stock_run:6.2f}s  "
            f"{n / stock_run:7.2f} posts/s  (sum of {rounds} slices; JVM load {stock_load:.1f}s)"
        )
        print(
            f"throughput vs stock: batch {stock_run / batch:.0f}x, "
            f"one post at a time {stock_run / loop:.0f}x; Kiwi alone {stock_run / kiwi:.0f}x"
        )
    else:
        print(f"{'stock sumy korean (konlpy Kkma)':<34} {stock}")


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
    parser.add_argument(
        "--english", type=Path, default=DEFAULT_ENGLISH, help="English set (JSON lines)"
    )
    parser.add_argument(
        "--only",
        choices=("korean", "english", "speed"),
        action="append",
        help="run only these parts (repeatable); default: all",
    )
    parser.add_argument("--stock-child", help=argparse.SUPPRESS)  # FIRST:LAST, internal
    args = parser.parse_args(argv)
    if args.stock_child:
        first, last = (int(x) for x in args.stock_child.split(":"))
        return stock_child(args.seeds, first, last)

    parts = set(args.only or ("korean", "english", "speed"))
    start = time.perf_counter()
    get_kiwi()
    kiwi_load = time.perf_counter() - start
    if "korean" in parts:
        korean(args.data, every=args.all)
    if "english" in parts:
        english(args.english)
    if "speed" in parts:
        posts = load_seed_posts(args.seeds)
        chars = sum(len(body) for _, body in posts)
        print(f"\nspeed: {len(posts)} seed posts, {chars:,} characters, 3 sentences each")
        print(f"Kiwi load {kiwi_load:.2f}s (once per process)")
        speed(posts, args.seeds, konlpy=not args.no_konlpy)
    return 0


def korean(data: Path, every: bool) -> None:
    docs = load_docs(data)
    rows: list[tuple[str, Ranker]] = [
        ("lead-k", top_k("lead")),
        ("sumy textrank (Kiwi)", top_k("textrank")),
        ("sumy lexrank (Kiwi)", top_k("lexrank")),
        ("textrank + title (Kiwi)", hybrid(HybridWeights(position=0.0, mmr_lambda=1.0))),
    ]
    if every:
        rows += [
            (f"sumy {a} (Kiwi)", top_k(a, a == "edmundson"))
            for a in ("lsa", "luhn", "edmundson", "kl", "sumbasic")
        ]
    rows.append(("hybrid (default)", hybrid(None)))

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

    splitting(docs)


if __name__ == "__main__":
    raise SystemExit(main())
