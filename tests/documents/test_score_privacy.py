"""Scores a caller sees never depend on other users' documents."""

import pytest

from documents.models import Chunk, Document
from documents.retrieval import get_retriever

pytestmark = pytest.mark.database


def _chunk(owner, text: str) -> None:
    document = Document.objects.create(owner=owner, title="t", content=text, size=len(text), content_hash="0" * 64, chunk_count=1)
    Chunk.objects.create(document=document, owner=owner, ordinal=0, text=text, token_count=len(text.split()))


def test_other_users_documents_do_not_change_my_scores(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    _chunk(alice, "zeta alpha beta gamma delta")
    _chunk(alice, "alpha beta gamma delta epsilon")
    before = [(hit.chunk_id, hit.score) for hit in get_retriever().search(owner_id=alice.pk, query="zeta alpha", top_k=5)]

    for _ in range(5):
        _chunk(bob, "zeta zeta zeta omega")

    after = [(hit.chunk_id, hit.score) for hit in get_retriever().search(owner_id=alice.pk, query="zeta alpha", top_k=5)]
    assert after == before
