"""Request and response shapes of the document and query endpoints."""

from pathlib import PurePath

from rest_framework import serializers

from documents.guards import query_guard

ALLOWED_UPLOAD_SUFFIXES = (".txt", ".md")


class StrictIntegerField(serializers.IntegerField):
    """An integer that must be sent as a JSON number: "5", 5.0 and true are refused."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise serializers.ValidationError("This field may not be blank.")
    return value


class DocumentCreateSerializer(serializers.Serializer):
    """JSON `{title, content}`, or multipart with a .txt/.md `file` (and an optional `title`)."""

    title = serializers.CharField(max_length=200, required=False, trim_whitespace=True)
    content = serializers.CharField(required=False, trim_whitespace=False, allow_blank=True)
    file = serializers.FileField(required=False, write_only=True)

    def validate(self, data: dict) -> dict:
        upload = data.pop("file", None)
        if upload is not None and "content" in data:
            raise serializers.ValidationError({"file": ["Send either `content` or `file`, not both."]})
        if upload is not None:
            name = PurePath(upload.name or "").name
            if PurePath(name).suffix.lower() not in ALLOWED_UPLOAD_SUFFIXES:
                raise serializers.ValidationError({"file": ["Only .txt and .md files are accepted."]})
            data["upload"] = upload
            data.setdefault("title", PurePath(name).stem[:200])
        elif "content" not in data:
            raise serializers.ValidationError({"content": ["This field is required."]})
        else:
            _check_text(data["content"], "content")
        if "title" not in data:
            raise serializers.ValidationError({"title": ["This field is required."]})
        _check_text(data["title"], "title")
        return data


def _check_text(value: str, field: str) -> None:
    if not value.strip():
        raise serializers.ValidationError({field: ["This field may not be blank."]})
    if "\x00" in value:
        raise serializers.ValidationError({field: ["Null characters are not allowed."]})


def decode_upload(raw: bytes) -> str:
    """The text of an uploaded file: strict UTF-8 (a BOM is dropped), no NUL or other binary control bytes."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise serializers.ValidationError({"file": ["The file is not UTF-8 text."]}) from None
    if any(ord(char) < 32 and char not in "\t\n\r\f" for char in text):
        raise serializers.ValidationError({"file": ["The file contains binary data."]})
    if not text.strip():
        raise serializers.ValidationError({"file": ["The file is empty."]})
    return text


class ScreeningSerializer(serializers.Serializer):
    status = serializers.CharField()
    score = serializers.FloatField()


class DocumentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    created_at = serializers.DateTimeField()
    size = serializers.IntegerField()
    chunks = serializers.IntegerField(source="chunk_count")
    screening = serializers.SerializerMethodField()

    def get_screening(self, document) -> dict:
        return {"status": document.screening_status, "score": document.screening_score}


class DocumentDetailSerializer(DocumentSerializer):
    updated_at = serializers.DateTimeField()
    content = serializers.CharField()


class QuerySerializer(serializers.Serializer):
    query = serializers.CharField(max_length=2000, trim_whitespace=True)
    top_k = StrictIntegerField(min_value=1, required=False, help_text="1 to the tier's max_top_k; default min(5, max_top_k).")

    def validate_query(self, value: str) -> str:
        """The prompt screen: a blocked query ends the request with 400 `prompt_injection_detected`."""
        query_guard(value)
        return value


class CitationSerializer(serializers.Serializer):
    document_id = serializers.UUIDField()
    title = serializers.CharField()
    snippet = serializers.CharField()
    score = serializers.FloatField()


class QueryUsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()


class QueryResponseSerializer(serializers.Serializer):
    answer = serializers.CharField()
    citations = CitationSerializer(many=True)
    usage = QueryUsageSerializer()
    request_id = serializers.CharField()
