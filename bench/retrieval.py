"""Retrieval benchmark: ingest rate and owner-scoped query latency on SQLite FTS5 and PostgreSQL.

A deterministic synthetic corpus (seeded random): --users users x --chunks-per-user chunks of
about 200 words each, grouped --chunks-per-document to a document (about 5 KB), words drawn
from a Zipf-like vocabulary. Query terms are words whose document frequency is 0.25-0.45 % of
chunks, so that a query of 2-4 of them matches about 1 % of all chunks (the figure is printed).

Prints, per engine: ingest rate (Document and Chunk rows through the ORM's bulk_create, one
transaction per batch; generating the text is not timed) and p50/p95 latency of one user's
queries through get_retriever().search(top_k=10).

    .venv/bin/python bench/retrieval.py [--engine sqlite|postgres|both] [--users 100]
        [--chunks-per-user 1000] [--queries 200] [--database-url postgres://...] [--explain]

SQLite uses a fresh file database in a temporary directory. PostgreSQL uses --database-url
(default: the local server, database ragsecure_bench_retrieval, created when missing); the
documents tables of that database are emptied first, so never point it at real data.
"""

import argparse
import bisect
import hashlib
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/ragsecure_bench_retrieval"
USERNAME_PREFIX = "bench-retrieval-"
VOCABULARY_SIZE = 50_000
ZIPF_EXPONENT = 1.0
WORDS_PER_CHUNK = (180, 220)
# Document frequency band of query terms: 2-4 of them OR-ed match about 1 % of chunks.
QUERY_TERM_DF = (0.0025, 0.0045)
TOP_K = 10
WARM_UP_QUERIES = 20

CONSONANTS = "bcdfghjklmnprstvz"
VOWELS = "aeiou"
# English stop words of the vocabulary's shape: PostgreSQL's 'english' configuration drops them.
STOP_WORDS = {"have", "before", "here", "more", "some", "same"}


# ---------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------
class Corpus:
    """The vocabulary, its Zipf weights and a chunk generator, all from one seed."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.words = self._vocabulary()
        weights = [1.0 / (rank**ZIPF_EXPONENT) for rank in range(1, len(self.words) + 1)]
        self.cum_weights = list(itertools.accumulate(weights))
        self.total_weight = self.cum_weights[-1]
        self.probabilities = [weight / self.total_weight for weight in weights]

    def _vocabulary(self) -> list[str]:
        syllables = [c + v for c in CONSONANTS for v in VOWELS]
        seen: dict[str, None] = {}
        while len(seen) < VOCABULARY_SIZE:
            word = "".join(self.random.choice(syllables) for _ in range(self.random.randint(2, 3)))
            if word not in STOP_WORDS:
                seen.setdefault(word, None)
        return list(seen)

    def expected_df(self, rank: int) -> float:
        """The share of chunks expected to hold the word of this (0-based) rank."""
        mean_words = sum(WORDS_PER_CHUNK) / 2
        return 1 - (1 - self.probabilities[rank]) ** mean_words

    def chunk(self) -> list[str]:
        """One chunk's words (the generator is sequential, so the corpus is the same on every run)."""
        count = self.random.randint(*WORDS_PER_CHUNK)
        draw, cum, total, words = self.random.random, self.cum_weights, self.total_weight, self.words
        hi = len(cum) - 1
        return [words[bisect.bisect(cum, draw() * total, 0, hi)] for _ in range(count)]

    def as_text(self, words: list[str]) -> str:
        """Words as sentences of 8-20 words, so chunks read like prose to the tokenizers."""
        sentences, start = [], 0
        while start < len(words):
            sentence = words[start : start + self.random.randint(8, 20)]
            sentences.append(" ".join([sentence[0].capitalize(), *sentence[1:]]) + ".")
            start += len(sentence)
        return " ".join(sentences)


# ---------------------------------------------------------------------------
# Django
# ---------------------------------------------------------------------------
def setup_django(database_url: str, var_dir: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "ragsecure.settings.local"
    os.environ["DATABASE_URL"] = database_url
    os.environ["RAGSECURE_VAR_DIR"] = var_dir
    os.environ["REDIS_URL"] = ""  # nothing here uses Redis
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def ensure_postgres_database(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def bench_users(count: int) -> list:
    from accounts.models import User

    names = [f"{USERNAME_PREFIX}{number:04d}" for number in range(count)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    User.objects.bulk_create([User(username=name, password="!unusable") for name in names if name not in existing])
    by_name = {user.username: user for user in User.objects.filter(username__in=names)}
    return [by_name[name] for name in names]


def empty_documents_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("TRUNCATE documents_chunk, documents_document")
        else:
            cursor.execute("DELETE FROM documents_chunk")
            cursor.execute("DELETE FROM documents_document")


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------
def database_cpu_seconds() -> float | None:
    """CPU time of this connection's PostgreSQL backend (a local server only), so contention can be told apart."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0  # SQLite runs inside this process: time.process_time() covers it
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Ingested:
    seconds: float = 0.0
    cpu_seconds: float | None = 0.0  # this process plus the database server, while timed
    documents: int = 0
    chunks: int = 0
    bytes: int = 0
    postings: dict[str, set[int]] = field(default_factory=dict)  # watched word -> chunk numbers
    user_postings: dict[str, set[int]] = field(default_factory=dict)  # the same within the queried user's chunks


def ingest(corpus: Corpus, users: list, *, chunks_per_user: int, chunks_per_document: int, watch: set[str], queried_user: int) -> Ingested:
    """Store every user's documents, timing only the database work."""
    from django.db import transaction

    from documents.models import Chunk, Document

    result = Ingested(postings={word: set() for word in watch}, user_postings={word: set() for word in watch})
    postings, user_postings = result.postings, result.user_postings
    chunk_number = 0
    for user_index, user in enumerate(users):
        batch_documents, batch_chunks = [], []
        remaining = chunks_per_user
        while remaining:
            texts = []
            for _ in range(min(chunks_per_document, remaining)):
                words = corpus.chunk()
                for word in watch.intersection(words):
                    postings[word].add(chunk_number)
                    if user_index == queried_user:
                        user_postings[word].add(chunk_number)
                texts.append(corpus.as_text(words))
                chunk_number += 1
            remaining -= len(texts)
            content = "\n\n".join(texts)
            encoded = content.encode()
            document = Document(
                id=uuid.UUID(int=corpus.random.getrandbits(128), version=4),
                owner=user,
                title=" ".join(texts[0].split()[:6]).rstrip("."),
                content=content,
                size=len(encoded),
                content_hash=hashlib.sha256(encoded).hexdigest(),
            )
            batch_documents.append(document)
            batch_chunks.extend(
                Chunk(document=document, owner=user, ordinal=ordinal, text=text, token_count=len(text.split()), retrievable=True)
                for ordinal, text in enumerate(texts)
            )
            result.bytes += len(encoded)
        server_before, client_before, started = database_cpu_seconds(), time.process_time(), time.perf_counter()
        with transaction.atomic():
            Document.objects.bulk_create(batch_documents)
            Chunk.objects.bulk_create(batch_chunks)
        result.seconds += time.perf_counter() - started
        server_after = database_cpu_seconds()
        if result.cpu_seconds is not None and server_before is not None and server_after is not None:
            result.cpu_seconds += time.process_time() - client_before + server_after - server_before
        else:
            result.cpu_seconds = None
        result.documents += len(batch_documents)
        result.chunks += len(batch_chunks)
    return result


def make_queries(corpus: Corpus, candidates: list[str], count: int, seed: int) -> list[list[str]]:
    chooser = random.Random(seed + 1)
    return [chooser.sample(candidates, chooser.randint(2, 4)) for _ in range(count)]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def explain(owner_id: int, query: str) -> str:
    """The engine's plan for one search, for investigating a missed target."""
    from django.db import connection

    from documents.retrieval import postgres, sqlite_fts
    from documents.retrieval.base import query_terms

    terms = query_terms(query)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = postgres._SEARCH.format(query=" || ".join([postgres._TERM] * len(terms)))
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, [*terms, owner_id, TOP_K])
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("EXPLAIN QUERY PLAN " + sqlite_fts._SEARCH, [sqlite_fts.fts5_query(terms), owner_id, TOP_K])
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


# The SQLite ranking before per-owner statistics: FTS5's bm25() weighs terms across every tenant's chunks.
TABLE_WIDE_BM25 = """
SELECT chunk.id, chunk.document_id, document.title, chunk.text, chunk.ordinal, -bm25(documents_chunk_fts) AS score
FROM documents_chunk_fts
CROSS JOIN documents_chunk AS chunk ON chunk.id = documents_chunk_fts.rowid
CROSS JOIN documents_document AS document ON document.id = chunk.document_id
WHERE documents_chunk_fts MATCH %s AND chunk.owner_id = %s AND chunk.retrievable
ORDER BY score DESC, chunk.id
LIMIT %s
"""


def table_wide_bm25(owner_id: int, terms: list[str]) -> list[tuple]:
    from django.db import connection

    from documents.retrieval import query_terms
    from documents.retrieval.sqlite_fts import fts5_query

    with connection.cursor() as cursor:
        cursor.execute(TABLE_WIDE_BM25, [fts5_query(query_terms(" ".join(terms))), owner_id, TOP_K])
        return cursor.fetchall()


def run_engine(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ragsecure-bench-retrieval-") as var_dir:
        if args.engine == "sqlite":
            database_url = f"sqlite:///{var_dir}/bench.sqlite3"
        else:
            database_url = args.database_url
            ensure_postgres_database(database_url)
        setup_django(database_url, var_dir)

        from django.db import connection

        from documents.retrieval import get_retriever

        with connection.cursor() as cursor:
            cursor.execute("SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version")
            version = cursor.fetchone()[0]
        where = database_url if connection.vendor == "postgresql" else "fresh file database in a temporary directory"
        print(f"engine: {connection.vendor} {version} ({where})")

        empty_documents_tables()
        users = bench_users(args.users)
        corpus = Corpus(args.seed)
        candidates = [word for rank, word in enumerate(corpus.words) if QUERY_TERM_DF[0] <= corpus.expected_df(rank) <= QUERY_TERM_DF[1]]
        queried_user = args.users // 2
        ingested = ingest(
            corpus,
            users,
            chunks_per_user=args.chunks_per_user,
            chunks_per_document=args.chunks_per_document,
            watch=set(candidates),
            queried_user=queried_user,
        )
        documents, chunks = ingested.documents, ingested.chunks
        print(
            f"corpus: {args.users} users x {args.chunks_per_user:,} chunks = {chunks:,} chunks in {documents:,} documents; "
            f"mean document {ingested.bytes / documents:,.0f} bytes; vocabulary {VOCABULARY_SIZE:,} words (Zipf s={ZIPF_EXPONENT}); "
            f"seed {args.seed}"
        )
        cpu = (
            f"; {ingested.cpu_seconds:.1f} CPU-s (client + database) = {documents / ingested.cpu_seconds:,.0f} documents per CPU-second"
            if ingested.cpu_seconds
            else ""
        )
        print(
            f"ingest: {documents:,} documents ({ingested.bytes / 1e6:,.1f} MB, {chunks:,} chunks) in {ingested.seconds:.1f} s of "
            f"bulk_create: {documents / ingested.seconds:,.0f} documents/s, {chunks / ingested.seconds:,.0f} chunks/s{cpu}  "
            f"[target >= 200 documents/s]"
        )

        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # What autovacuum does shortly after a bulk load: planner statistics, GIN pending list merged.
                cursor.execute("VACUUM ANALYZE documents_chunk")
                cursor.execute("VACUUM ANALYZE documents_document")
            else:
                cursor.execute("ANALYZE")

        queries = make_queries(corpus, candidates, WARM_UP_QUERIES + args.queries, args.seed)
        matched_all = [len(set().union(*(ingested.postings[w] for w in terms))) / chunks for terms in queries]
        matched_user = [len(set().union(*(ingested.user_postings[w] for w in terms))) for terms in queries]
        owner = users[queried_user]
        print(
            f"queries: {args.queries} of 2-4 words for user {owner.username} (+{WARM_UP_QUERIES} untimed warm-up); "
            f"each matches {statistics.mean(matched_all) * 100:.2f} % of all chunks on average "
            f"({statistics.mean(matched_user):.1f} of the user's {args.chunks_per_user:,})"
        )
        if args.explain:
            print(explain(owner.id, " ".join(queries[0])))

        retriever = get_retriever()
        latencies, returned, reference = [], [], []
        for number, terms in enumerate(queries):
            # On SQLite, the ranking by FTS5's own (table-wide) bm25() runs beside each query, alternating which goes
            # first, so the per-owner ranking's cost is measured against it under the same load.
            runs = [("ragsecure", lambda terms=terms: retriever.search(owner_id=owner.id, query=" ".join(terms), top_k=TOP_K))]
            if connection.vendor == "sqlite":
                runs.append(("table-wide bm25", lambda terms=terms: table_wide_bm25(owner.id, terms)))
            for name, run in runs if number % 2 else reversed(runs):
                started = time.perf_counter()
                results = run()
                elapsed = (time.perf_counter() - started) * 1000
                if number < WARM_UP_QUERIES:
                    continue
                if name == "ragsecure":
                    if any(result.chunk_id is None for result in results):
                        raise SystemExit("bad result")
                    latencies.append(elapsed)
                    returned.append(len(results))
                else:
                    reference.append(elapsed)
        print(
            f"query latency (top_k={TOP_K}): p50 {percentile(latencies, 0.50):.1f} ms, p95 {percentile(latencies, 0.95):.1f} ms, "
            f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms; mean {statistics.mean(returned):.1f} results  "
            f"[target p50 <= 50 ms, p95 <= 150 ms]"
        )
        if reference:
            print(
                f"  beside it, FTS5's table-wide bm25() (the old ranking): p50 {percentile(reference, 0.50):.1f} ms, "
                f"p95 {percentile(reference, 0.95):.1f} ms; per-owner / table-wide p50 = "
                f"{percentile(latencies, 0.50) / percentile(reference, 0.50):.2f}  [target <= 2]"
            )
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--chunks-per-user", type=int, default=1000)
    parser.add_argument("--chunks-per-document", type=int, default=4, help="about 5 KB documents at 4 chunks")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES_URL, help="PostgreSQL database for --engine postgres")
    parser.add_argument("--explain", action="store_true", help="print the engine's plan for one query")
    args = parser.parse_args()
    if args.users < 1 or args.chunks_per_user < 1 or args.queries < 1 or args.chunks_per_document < 1:
        parser.error("sizes must be positive")
    if args.engine != "both":
        run_engine(args)
        return
    # One process per engine: Django's settings (and so the database) are fixed at setup.
    failed = False
    for engine in ("sqlite", "postgres"):
        command = [sys.executable, __file__, "--engine", engine] + [
            f"--{name.replace('_', '-')}={value}" for name, value in vars(args).items() if name not in ("engine", "explain")
        ]
        if args.explain:
            command.append("--explain")
        failed |= subprocess.run(command, check=False).returncode != 0  # noqa: S603 - our own script
        print()
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
