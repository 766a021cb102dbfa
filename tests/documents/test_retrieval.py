"""The retriever contract, run against the current database's engine (SQLite here, PostgreSQL under `make test-postgres`)."""

import hashlib
import sqlite3
import uuid

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from documents.models import Chunk, Document, ScreeningStatus
from documents.retrieval import RetrievedChunk, get_retriever
from documents.retrieval.postgres import PostgresRetriever
from documents.retrieval.sqlite_fts import SqliteFtsRetriever, fts5_query

pytestmark = pytest.mark.database

FILLER = "the quiet archive holds many ordinary pages about weather and gardens"


def add_document(owner, chunks: list[str], *, title: str = "notes", retrievable: bool = True) -> Document:
    """A document whose chunks are `chunks`, stored directly (no chunking or screening involved)."""
    content = "\n\n".join(chunks)
    document = Document.objects.create(
        owner=owner,
        title=title,
        content=content,
        size=len(content.encode()),
        content_hash=hashlib.sha256(content.encode()).hexdigest(),
        screening_status=ScreeningStatus.CLEAN if retrievable else ScreeningStatus.QUARANTINED,
    )
    Chunk.objects.bulk_create(
        Chunk(document=document, owner=owner, ordinal=ordinal, text=text, token_count=len(text.split()), retrievable=retrievable)
        for ordinal, text in enumerate(chunks)
    )
    return document


def chunk_of(document: Document, ordinal: int = 0) -> Chunk:
    return document.chunks.get(ordinal=ordinal)


def assert_belongs_to(results: list[RetrievedChunk], owner) -> None:
    """Every result is a retrievable chunk of `owner`, reported with its own document, title and text."""
    stored = {chunk.id: chunk for chunk in Chunk.objects.select_related("document").filter(id__in=[r.chunk_id for r in results])}
    assert len(stored) == len(results) == len({r.chunk_id for r in results})
    for result in results:
        chunk = stored[result.chunk_id]
        assert chunk.owner_id == owner.id and chunk.retrievable
        assert result.document_id == chunk.document_id and isinstance(result.document_id, uuid.UUID)
        assert (result.title, result.text, result.ordinal) == (chunk.document.title, chunk.text, chunk.ordinal)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


# Words of the engines' query syntax (FTS5, tsquery, websearch) and SQL, each a query of its own.
HOSTILE_QUERIES = [
    '"',
    '""',
    '"alpha',
    'alpha"',
    '"alpha beta"',
    "*",
    "alpha*",
    "* alpha",
    "NEAR(alpha beta",
    "NEAR(alpha beta, 2)",
    "NEAR",
    "OR",
    "AND",
    "NOT",
    "alpha OR",
    "OR alpha",
    "alpha AND NOT beta",
    "NOT alpha",
    "^alpha",
    "^",
    "-alpha",
    "-",
    "alpha - beta",
    ":",
    "alpha:",
    ":alpha",
    "col:alpha",
    "text:alpha",
    "documents_chunk_fts:alpha",
    "{text}: alpha",
    "(",
    ")",
    "((alpha",
    "alpha))",
    "(alpha OR beta",
    "+alpha",
    "alpha & beta | !gamma",
    "alpha <-> beta",
    "alpha:* & beta:A",
    "!!",
    "'",
    "'alpha'",
    "'; DROP TABLE documents_chunk; --",
    "alpha'; DELETE FROM documents_document WHERE '1'='1",
    "1=1 OR 1=1",
    "%s %s %%",
    "?",
    "\\",
    "alpha\x00beta",
    "\x00",
    "\x00\x00 OR \x00",
    "_",
    "__alpha__",
    "\u200b\ufeff",
    "🙂 alpha",
    "alpha " * 2000,
    "(" * 10_000,
    "a" * 10_000,
    '"OR" ' * 2000,
    " ".join(f"w{i}" for i in range(2000)),
]

# A few hostile queries in which a plain word must still be found as a word.
WORD_QUERIES = [
    ('"alpha', "alpha"),
    ("alpha*", "alpha"),
    ("NEAR(alpha beta", "alpha"),
    ("-alpha", "alpha"),
    ("NOT alpha", "alpha"),
    ("^alpha", "alpha"),
    ("col:alpha", "alpha"),
    ("text:alpha", "alpha"),
    ("(alpha OR beta", "alpha"),
    ("alpha\x00", "alpha"),
    ("'; DROP TABLE documents_chunk; -- alpha", "alpha"),
]


class RetrieverContract:
    """What every retriever promises; each engine's run must pass all of it."""

    @pytest.fixture
    def retriever(self):
        raise NotImplementedError

    @pytest.fixture
    def alice(self, make_user):
        return make_user("alice")

    @pytest.fixture
    def bob(self, make_user):
        return make_user("bob")

    @pytest.fixture
    def corpus(self, alice, bob):
        """Alice and Bob each hold the same texts; Bob has more of them and a quarantined one."""
        for owner in (alice, bob):
            add_document(owner, [f"alpha beta gamma {FILLER}", f"delta epsilon {FILLER}"], title=f"{owner.username} greek")
            misc = [f"alphabet soup {FILLER}", f"near or and not drop table col term {FILLER}"]
            add_document(owner, misc, title=f"{owner.username} misc")
        add_document(bob, [f"alpha alpha alpha beta {FILLER}"] * 3, title="bob many")
        add_document(bob, [f"alpha beta gamma delta {FILLER}"], title="bob quarantined", retrievable=False)
        return {"alice": alice, "bob": bob}

    # -- ranking ------------------------------------------------------------------------------------

    # -- no signal about other tenants ---------------------------------------------------------------

    def probe_order(self, retriever, owner) -> list[str]:
        """The order of the owner's two probe chunks for the query "T C" (T the probed word, C a word only they have)."""
        return [r.text for r in retriever.search(owner_id=owner.id, query="tapir cormorant", top_k=2)]

    def test_ranking_gives_no_signal_about_other_tenants_words(self, retriever, alice, bob):
        """Whether another tenant uses the probed word (or deletes it again) never changes the caller's order."""
        add_document(alice, ["marker tapir lorem"], title="probe t")
        add_document(alice, ["marker cormorant lorem"], title="probe c")
        alone = self.probe_order(retriever, alice)

        others = [add_document(bob, [f"tapir tapir tapir {FILLER} {n}"], title=f"bob {n}") for n in range(20)]
        assert self.probe_order(retriever, alice) == alone
        for document in others:
            document.delete()
        assert self.probe_order(retriever, alice) == alone

    def test_quarantined_text_is_in_no_statistic(self, retriever, alice):
        """The caller's own quarantined chunks weigh nothing: releasing none, the order stays put."""
        add_document(alice, ["marker tapir lorem"], title="probe t")
        add_document(alice, ["marker cormorant lorem"], title="probe c")
        before = self.probe_order(retriever, alice)

        add_document(alice, [f"tapir tapir {FILLER} {n}" for n in range(20)], title="held", retrievable=False)
        assert self.probe_order(retriever, alice) == before

    def test_scores_depend_only_on_the_callers_retrievable_chunks(self, retriever, alice, bob):
        add_document(alice, [f"tapir {FILLER}", f"tapir cormorant {FILLER} again"], title="mine")
        before = [(r.chunk_id, r.score) for r in retriever.search(owner_id=alice.id, query="tapir cormorant", top_k=5)]
        add_document(bob, [f"cormorant {FILLER} {n}" for n in range(30)], title="theirs")
        add_document(alice, [f"cormorant {FILLER} held"], title="held", retrievable=False)
        after = [(r.chunk_id, r.score) for r in retriever.search(owner_id=alice.id, query="tapir cormorant", top_k=5)]
        assert after == before


    def test_returns_matching_chunks_best_first(self, retriever, alice):
        both = add_document(alice, [f"falcon harbour {FILLER}"], title="both")
        one = add_document(alice, [f"falcon {FILLER} mill"], title="one")
        add_document(alice, [f"lighthouse {FILLER}"], title="neither")

        results = retriever.search(owner_id=alice.id, query="falcon harbour", top_k=10)

        assert [r.document_id for r in results] == [both.id, one.id]
        assert results[0].score > results[1].score
        assert_belongs_to(results, alice)

    def test_more_occurrences_rank_higher(self, retriever, alice):
        once = add_document(alice, [f"kestrel {FILLER} one two"], title="once")
        thrice = add_document(alice, [f"kestrel kestrel kestrel {FILLER}"], title="thrice")

        results = retriever.search(owner_id=alice.id, query="kestrel", top_k=10)

        assert [r.document_id for r in results] == [thrice.id, once.id]
        assert results[0].score > results[1].score

    def test_result_carries_chunk_and_document(self, retriever, alice):
        document = add_document(alice, [f"intro {FILLER}", f"the heron nests by the river {FILLER}"], title="Birds of the river")

        (result,) = retriever.search(owner_id=alice.id, query="heron", top_k=5)

        chunk = chunk_of(document, 1)
        assert result == RetrievedChunk(
            chunk_id=chunk.id, document_id=document.id, title="Birds of the river", text=chunk.text, ordinal=1, score=result.score
        )
        assert isinstance(result.score, float) and result.score > 0

    def test_query_terms_are_case_insensitive(self, retriever, alice):
        document = add_document(alice, [f"Osprey OSPREY osprey {FILLER}"])

        results = retriever.search(owner_id=alice.id, query="OsPrEy", top_k=5)

        assert [r.document_id for r in results] == [document.id]

    @pytest.mark.parametrize("query", ["", "   ", "\n\t", "!!! ??? ...", '"" () * ^ : -', "\x00"])
    def test_query_without_words_returns_nothing(self, retriever, corpus, query):
        assert retriever.search(owner_id=corpus["alice"].id, query=query, top_k=5) == []

    # -- who may see what ------------------------------------------------------------------------------

    def test_each_owner_sees_only_their_own_chunks(self, retriever, corpus):
        for name in ("alice", "bob"):
            results = retriever.search(owner_id=corpus[name].id, query="alpha gamma", top_k=100)
            assert results
            assert_belongs_to(results, corpus[name])
            assert all(r.title.startswith(name) for r in results)

    def test_owner_filter_applies_before_ranking(self, retriever, corpus):
        """Bob's better-matching chunks must not crowd Alice's out of her top_k."""
        (result,) = retriever.search(owner_id=corpus["alice"].id, query="alpha", top_k=1)

        assert result.title == "alice greek"

    def test_user_without_matching_documents_gets_nothing(self, retriever, corpus, make_user):
        carol = make_user("carol")
        assert retriever.search(owner_id=carol.id, query="alpha beta gamma", top_k=100) == []
        add_document(carol, [f"zebra {FILLER}"])
        assert retriever.search(owner_id=carol.id, query="alpha beta gamma", top_k=100) == []

    def test_unknown_owner_gets_nothing(self, retriever, corpus):
        assert retriever.search(owner_id=10**9, query="alpha", top_k=100) == []

    def test_quarantined_chunks_are_never_returned(self, retriever, bob):
        quarantined = add_document(bob, [f"mongoose mongoose mongoose {FILLER}"], title="quarantined", retrievable=False)
        clean = add_document(bob, [f"mongoose {FILLER} and more"], title="clean")

        results = retriever.search(owner_id=bob.id, query="mongoose", top_k=10)

        assert [r.document_id for r in results] == [clean.id]
        assert quarantined.id not in {r.document_id for r in results}

    def test_released_chunks_become_retrievable_and_requarantined_ones_vanish(self, retriever, bob):
        document = add_document(bob, [f"pangolin {FILLER}"], retrievable=False)
        assert retriever.search(owner_id=bob.id, query="pangolin", top_k=10) == []

        Chunk.objects.filter(document=document).update(retrievable=True)
        assert [r.document_id for r in retriever.search(owner_id=bob.id, query="pangolin", top_k=10)] == [document.id]

        Chunk.objects.filter(document=document).update(retrievable=False)
        assert retriever.search(owner_id=bob.id, query="pangolin", top_k=10) == []

    # -- top_k --------------------------------------------------------------------------------------

    @pytest.mark.parametrize(("top_k", "expected"), [(1, 1), (3, 3), (8, 8), (100, 8)])
    def test_top_k_bounds_the_results(self, retriever, alice, top_k, expected):
        for number in range(8):
            add_document(alice, [f"{'walrus ' * (number + 1)}{FILLER}"], title=f"walrus {number}")

        results = retriever.search(owner_id=alice.id, query="walrus", top_k=top_k)

        assert len(results) == expected
        assert [r.title for r in results] == [f"walrus {number}" for number in range(7, 7 - expected, -1)]

    @pytest.mark.parametrize("top_k", [0, -1])
    def test_top_k_below_one_is_refused(self, retriever, corpus, top_k):
        with pytest.raises(ValueError):
            retriever.search(owner_id=corpus["alice"].id, query="alpha", top_k=top_k)

    # -- the index follows the rows ----------------------------------------------------------------------

    def test_deleted_documents_vanish(self, retriever, alice):
        gone = add_document(alice, [f"ibis {FILLER}", f"ibis again {FILLER}"], title="gone")
        kept = add_document(alice, [f"ibis {FILLER} kept"], title="kept")

        gone.delete()

        assert [r.document_id for r in retriever.search(owner_id=alice.id, query="ibis", top_k=10)] == [kept.id]

    def test_deleted_chunks_vanish(self, retriever, alice):
        document = add_document(alice, [f"jackal {FILLER}", f"jackal {FILLER} second"])

        chunk_of(document, 0).delete()

        assert [r.ordinal for r in retriever.search(owner_id=alice.id, query="jackal", top_k=10)] == [1]

    def test_edited_chunk_text_is_searched_as_edited(self, retriever, alice):
        document = add_document(alice, [f"lemur {FILLER}"])

        Chunk.objects.filter(document=document).update(text=f"marmot {FILLER}")

        assert retriever.search(owner_id=alice.id, query="lemur", top_k=10) == []
        (result,) = retriever.search(owner_id=alice.id, query="marmot", top_k=10)
        assert result.text.startswith("marmot")

    # -- hostile and unusual text ---------------------------------------------------------------------

    @pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=range(len(HOSTILE_QUERIES)))
    def test_query_syntax_is_plain_words(self, retriever, corpus, query):
        results = retriever.search(owner_id=corpus["alice"].id, query=query, top_k=100)

        assert_belongs_to(results, corpus["alice"])
        assert Chunk.objects.filter(owner=corpus["alice"]).count() == 4
        assert Document.objects.count() == 6

    @pytest.mark.parametrize(("query", "word"), WORD_QUERIES)
    def test_words_inside_query_syntax_are_still_found(self, retriever, corpus, query, word):
        results = retriever.search(owner_id=corpus["alice"].id, query=query, top_k=100)

        assert_belongs_to(results, corpus["alice"])
        assert any(word in r.text.split() for r in results)

    def test_asterisk_is_not_a_prefix_operator(self, retriever, corpus):
        results = retriever.search(owner_id=corpus["alice"].id, query="alph*", top_k=100)

        assert results == []

    @pytest.mark.parametrize(
        ("text", "query"),
        [
            ("Привет мир как дела", "мир"),
            ("ПРИВЕТ МИР", "привет"),
            ("Καλημέρα κόσμε από την Αθήνα", "κόσμε"),
            ("東京 大阪 京都 札幌", "大阪"),
            ("مرحبا بالعالم", "بالعالم"),
            ("café crème brûlée", "crème"),
        ],
    )
    def test_non_latin_text_is_retrievable(self, retriever, alice, bob, text, query):
        add_document(bob, [text])
        document = add_document(alice, [text])

        results = retriever.search(owner_id=alice.id, query=query, top_k=10)

        assert [r.document_id for r in results] == [document.id]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        query=st.one_of(
            st.text(),
            st.lists(
                st.sampled_from(["alpha", "beta", "near", "term", "мир", *'" * ( ) NEAR( OR AND NOT ^ - : \x00'.split(" ")]),
                max_size=12,
            ).map(" ".join),
        ),
        top_k=st.integers(min_value=1, max_value=20),
    )
    def test_any_query_returns_only_the_callers_retrievable_chunks(self, retriever, corpus, query, top_k):
        for name in ("alice", "bob"):
            results = retriever.search(owner_id=corpus[name].id, query=query, top_k=top_k)
            assert len(results) <= top_k
            assert_belongs_to(results, corpus[name])


class TestDatabaseRetriever(RetrieverContract):
    """The contract on the engine of the database under test."""

    @pytest.fixture
    def retriever(self):
        return get_retriever()

    def test_engine_matches_database(self, retriever):
        expected = {"sqlite": SqliteFtsRetriever, "postgresql": PostgresRetriever}[connection.vendor]
        assert type(retriever) is expected


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="the FTS5 index exists on SQLite only")
class TestSqliteIndex:
    """The external-content FTS5 index follows documents_chunk through inserts, edits and deletes."""

    def fts_rowids(self, word: str) -> set[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rowid FROM documents_chunk_fts WHERE documents_chunk_fts MATCH %s", [fts5_query([word])])
            return {row[0] for row in cursor.fetchall()}

    def integrity_check(self) -> None:
        """Raises when the index disagrees with documents_chunk (rank 1: compare with the content table)."""
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO documents_chunk_fts(documents_chunk_fts, rank) VALUES ('integrity-check', 1)")

    def test_index_forgets_deleted_and_edited_text(self, make_user):
        owner = make_user("alice")
        kept = add_document(owner, [f"ibis {FILLER}", f"ibis {FILLER} two"])
        gone = add_document(owner, [f"ibis {FILLER} three"])
        edited = add_document(owner, [f"ibis {FILLER} four"])
        self.integrity_check()

        gone.delete()
        chunk_of(kept, 1).delete()
        Chunk.objects.filter(document=edited).update(text=f"marmot {FILLER}")
        Chunk.objects.filter(document=kept).update(retrievable=False)

        assert self.fts_rowids("ibis") == {chunk_of(kept, 0).id}
        assert self.fts_rowids("marmot") == {chunk_of(edited).id}
        self.integrity_check()


@settings(max_examples=300, deadline=None)
@given(terms=st.lists(st.text(min_size=1), min_size=1, max_size=8))
def test_fts5_query_is_a_valid_match_expression_whatever_the_terms(terms):
    """Quoting alone keeps any string out of FTS5's syntax (query_terms is a second line of defence)."""
    database = sqlite3.connect(":memory:")
    database.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize='unicode61 remove_diacritics 2')")
    database.execute("INSERT INTO t VALUES ('alpha beta NEAR OR AND NOT col term')")

    database.execute("SELECT rowid FROM t WHERE t MATCH ?", (fts5_query(terms),)).fetchall()


def test_fts5_query_quotes_every_term():
    assert fts5_query(["alpha", 'be"ta', "OR"]) == '"alpha" OR "be""ta" OR "OR"'
