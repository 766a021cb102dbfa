"""Document endpoints (list, upload, get, delete) and the RAG query endpoint."""

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import tier_get
from documents import selectors, services
from documents.serializers import (
    DocumentCreateSerializer,
    DocumentDetailSerializer,
    DocumentSerializer,
    QueryResponseSerializer,
    QuerySerializer,
    decode_upload,
)
from ragsecure.errors import NotFound, PayloadTooLarge, ValidationFailed, current_request_id
from ragsecure.parsers import SafeJSONParser

DEFAULT_TOP_K = 5


class DocumentPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class DocumentListCreateApi(APIView):
    """The caller's own documents: list them, or upload one."""

    audit_action = {"GET": "documents.list", "POST": "documents.create"}
    parser_classes = [SafeJSONParser, MultiPartParser]

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return ("documents:write",) if self.request.method == "POST" else ("documents:read",)

    @extend_schema(
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int, description="At most 100.")],
        responses={200: DocumentSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        paginator = DocumentPagination()
        page = paginator.paginate_queryset(selectors.document_list(owner_id=request.user.pk), request, view=self)
        return paginator.get_paginated_response(DocumentSerializer(page, many=True).data)

    @extend_schema(request=DocumentCreateSerializer, responses={201: DocumentSerializer})
    def post(self, request: Request) -> Response:
        serializer = DocumentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tier = tier_get(tier_id=request.user.tier_id)
        limit = tier.max_document_bytes if tier else 0
        if "upload" in data:
            upload = data["upload"]
            if upload.size is not None and upload.size > limit:
                raise PayloadTooLarge("The document is larger than your tier allows.")
            content = decode_upload(upload.read(limit + 1))
        else:
            content = data["content"]
        document = services.document_create(owner=request.user, title=data["title"], content=content)
        return Response(DocumentSerializer(document).data, status=status.HTTP_201_CREATED)


class DocumentDetailApi(APIView):
    """One of the caller's documents: read it, or delete it (`documents:write`); `admin` may delete any document."""

    audit_action = {"GET": "documents.get", "DELETE": "documents.delete"}

    @property
    def required_scopes(self) -> tuple[str, ...]:
        if self.request.method != "DELETE":
            return ("documents:read",)
        return ("admin",) if "admin" in getattr(self.request.user, "scopes", ()) else ("documents:write",)

    @extend_schema(responses={200: DocumentDetailSerializer})
    def get(self, request: Request, document_id: uuid.UUID) -> Response:
        document = selectors.document_get(owner_id=request.user.pk, document_id=document_id)
        if document is None:
            raise NotFound()
        return Response(DocumentDetailSerializer(document).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, document_id: uuid.UUID) -> Response:
        if "admin" in request.user.scopes:
            document = selectors.document_get_any(document_id=document_id)
        else:
            document = selectors.document_get(owner_id=request.user.pk, document_id=document_id)
        if document is None:
            raise NotFound()
        services.document_delete(document=document, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class QueryApi(APIView):
    """Ask a question over the caller's own documents; the answer cites them."""

    audit_action = "query"
    required_scopes = ("query:read",)

    @extend_schema(request=QuerySerializer, responses={200: QueryResponseSerializer})
    def post(self, request: Request) -> Response:
        serializer = QuerySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        query = serializer.validated_data["query"]
        tier = tier_get(tier_id=request.user.tier_id)
        max_top_k = tier.max_top_k if tier else 0
        top_k = serializer.validated_data.get("top_k", min(DEFAULT_TOP_K, max_top_k))
        if top_k > max_top_k or top_k < 1:
            raise ValidationFailed(fields={"top_k": [f"Ensure this value is less than or equal to {max_top_k}."]})
        answer = services.query_answer(user_id=request.user.pk, tier=tier, query=query, top_k=top_k)
        body = {
            "answer": answer.text,
            "citations": [
                {"document_id": citation.document_id, "title": citation.title, "snippet": citation.snippet, "score": citation.score}
                for citation in answer.citations
            ],
            "usage": {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens},
            "request_id": current_request_id(request),
        }
        return Response(QueryResponseSerializer(body).data)
