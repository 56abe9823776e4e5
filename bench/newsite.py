"""The scorecard of the local news site (tests/fixtures/newsite), per source kind.

    python bench/newsite.py              # SQLite stores in a temporary folder
    python bench/newsite.py --pg postgresql+psycopg:///digest_test --verbose

serves the site on 127.0.0.1 and runs `digest -v ingest` through the CLI once per source
kind, each into a fresh store: a page source on the front page (`page`), a page source on
`/sitemap.xml` (`sitemap`), a feed source on the teaser-only EUC-KR RSS (`feed`), and a feed
source given the front page, which announces the RSS (`discovered`). For each it prints the
ten articles stored, the non-article pages stored (profiles, section fronts, "회사소개"), and
of the stored articles: titles that are the headline, authors that are the byline's name,
descriptions that are the publisher's deck, dates that are the page's, and bodies that hold
every paragraph apart with no comment, caption, related headline or byline. `--verbose`
adds each miss and the pages skipped as not articles, with the reason. Exits 1 unless every
row is perfect.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.newsite import score, sitegen  # noqa: E402


def _fresh_schema(pg: str, name: str) -> tuple[str, object]:
    import sqlalchemy as sa

    admin = sa.create_engine(pg)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    url = sa.engine.make_url(pg).update_query_dict({"options": f"-csearch_path={name}"})
    return url.render_as_string(hide_password=False), admin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default="", help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--kinds", default=",".join(score.KINDS), help="comma-separated")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    perfect = True
    with sitegen.serve() as site:
        print(f"site: {site.base} ({len(sitegen.ARTICLES)} articles)")
        for kind in args.kinds.split(","):
            with tempfile.TemporaryDirectory() as folder:
                store_url, admin = "", None
                if args.pg:
                    store_url, admin = _fresh_schema(args.pg, f"bench_newsite_{kind}")
                started = time.perf_counter()
                try:
                    card = score.run(Path(folder), kind, site.base, store_url)
                finally:
                    if admin is not None:
                        import sqlalchemy as sa

                        with admin.begin() as conn:  # type: ignore[attr-defined]
                            conn.execute(sa.text(f"DROP SCHEMA bench_newsite_{kind} CASCADE"))
                        admin.dispose()  # type: ignore[attr-defined]
                seconds = time.perf_counter() - started
            print(f"{card.row()}  ({seconds:.1f}s)")
            perfect = perfect and card.perfect and card.exit_code == 0
            if args.verbose:
                for line in [
                    *card.problems,
                    *(f"stored, not an article: {u}" for u in card.non_articles),
                ]:
                    print(f"    {line}")
                for line in card.output.splitlines():
                    if line.lstrip().startswith("skipped"):
                        print(f"    {line.strip()}")
    return 0 if perfect else 1


if __name__ == "__main__":
    sys.exit(main())
