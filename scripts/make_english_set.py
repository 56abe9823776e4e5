"""Build bench/data/english/go-blog.jsonl, the English summary set, from a checkout of
golang/website (the Go blog's Markdown sources, `_content/blog/*.md`).

Each Go blog post carries an author-written `summary:` in its front matter: the reference
summary. The text is the post's Markdown turned into plain paragraphs the way a feed
reader's text reaches digest: code blocks, images and template directives dropped, links
reduced to their words, headings and list items on lines of their own.

    python scripts/make_english_set.py /path/to/golang/website [--commit REV]

The Go blog's text is licensed CC BY 4.0 (go.dev: "Except as noted, the content of this
page is licensed under the Creative Commons Attribution 4.0 License"); each record names
its author and address.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

# Release announcements (news) and anniversary, policy and project posts (essays); chosen
# for prose over code, 2018-2026.
POSTS = """
conduct-2018 go-cloud appengine-go111 9years go2-here-we-come modules2019 go-cloud2019
go2-next-steps module-mirror-launch 10years go1.15-proposals pkg.go.dev-2020 pandemic
vscode-go generics-next-step 11years pkgsite-redesign godoc.org-redirect ports
generics-proposal gopls-vscode-go fuzz-beta stackoverflow conduct-2021
pkgsite-search-redesign 12years go1.18beta1 go1.18 supply-chain go1.19 vuln 13years go1.20
go1.21rc govulncheck gonew go1.21 14years go1.22 go1.23 15years gotelemetry go1.24
tob-crypto-audit 16years go1.26 go1.27 llmpowered
""".split()  # noqa: SIM905 (slugs read better as words)

OUT = Path(__file__).resolve().parent.parent / "bench" / "data" / "english" / "go-blog.jsonl"


def _show(repo: Path, rev: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"{rev}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def front_matter(source: str) -> tuple[dict[str, object], str]:
    head, _, body = source.removeprefix("---\n").partition("\n---\n")
    meta: dict[str, object] = {}
    key = ""
    for line in head.splitlines():
        if line.startswith("  ") and key and not isinstance(meta.get(key, ""), list):
            meta[key] = f"{meta.get(key, '')} {line.strip()}".strip()  # a folded value
        elif line.startswith("- ") and key:
            items = meta.setdefault(key, [])
            if isinstance(items, list):
                items.append(line[2:].strip())
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            if value.strip():
                meta[key] = value.strip().strip('"')
    return meta, body


_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_TAG = re.compile(r"<[^>]+>")
_INLINE = re.compile(r"[*_]{1,2}([^*_\n]+)[*_]{1,2}")


def inline(text: str) -> str:
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _REF_LINK.sub(lambda m: m.group(1), text)
    text = _TAG.sub("", text).replace("`", "")
    text = _INLINE.sub(lambda m: m.group(1), text)
    return re.sub(r"\s+", " ", text).strip()


def plain(body: str) -> str:
    """Paragraphs separated by blank lines; headings and list items on their own lines."""
    blocks: list[str] = []
    lines: list[str] = []
    fenced = False

    def flush() -> None:
        if lines:
            text = inline(" ".join(lines))
            if text:
                blocks.append(text)
            lines.clear()

    for raw in body.splitlines():
        line = raw.rstrip()
        if line.startswith("```"):
            flush()
            fenced = not fenced
            continue
        if fenced or (raw.startswith(("\t", "    ")) and not lines):
            continue  # code
        stripped = line.strip()
        if not stripped or stripped.startswith(("{{", "<div", "</div", "<img", "<iframe")):
            flush()
            continue
        if re.match(r"^\[[^\]]+\]:\s", stripped):
            continue  # a link reference definition
        if stripped.startswith("#"):
            flush()
            blocks.append(inline(stripped.lstrip("#")))
            continue
        if re.match(r"^(?:[-*+]|\d+\.)\s", stripped):
            flush()
            lines.append(stripped)
            continue
        lines.append(stripped)
    flush()
    return "\n\n".join(b for b in blocks if re.search(r"\w", b))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("repo", type=Path, help="golang/website checkout (a git directory)")
    parser.add_argument("--commit", default="HEAD")
    args = parser.parse_args()
    rev = subprocess.run(
        ["git", "-C", str(args.repo), "rev-parse", args.commit],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as out:
        for slug in POSTS:
            meta, body = front_matter(_show(args.repo, rev, f"_content/blog/{slug}.md"))
            by = meta.get("by", [])
            record = {
                "id": slug,
                "title": meta["title"],
                "date": str(meta.get("date", "")),
                "author": ", ".join(by) if isinstance(by, list) else str(by),
                "url": f"https://go.dev/blog/{slug}",
                "source": f"golang/website@{rev[:12]} _content/blog/{slug}.md",
                "licence": "CC BY 4.0",
                "summary": meta["summary"],
                "text": plain(body),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(POSTS)} posts to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
