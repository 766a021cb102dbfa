"""Request and response shapes of the token and account endpoints."""

from rest_framework import serializers

from ragsecure.conf import ragsecure_settings

MAX_TOKEN_CHARS = 8192


class PasswordField(serializers.CharField):
    """A write-only password, bounded so that hashing cannot be abused with huge inputs."""

    def __init__(self, **kwargs) -> None:
        super().__init__(write_only=True, trim_whitespace=False, style={"input_type": "password"}, **kwargs)

    def run_validation(self, data=serializers.empty):
        value = super().run_validation(data)
        if len(value) > int(ragsecure_settings.PASSWORD_MAX_LENGTH):
            raise serializers.ValidationError("Ensure this field has no more than the allowed number of characters.")
        return value


class TokenObtainSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, trim_whitespace=False)
    password = PasswordField()
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, allow_empty=True, max_length=32
    )


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=MAX_TOKEN_CHARS, trim_whitespace=True)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
    scopes = serializers.ListField(child=serializers.CharField())


class TierSerializer(serializers.Serializer):
    name = serializers.CharField()
    requests_per_minute = serializers.IntegerField()
    llm_tokens_per_day = serializers.IntegerField()
    max_top_k = serializers.IntegerField()
    max_document_bytes = serializers.IntegerField()
    retrieved_bytes_per_hour = serializers.IntegerField()
    max_documents = serializers.IntegerField(help_text="Documents a user may hold at once.")
    max_stored_bytes = serializers.IntegerField(help_text="UTF-8 bytes of documents a user may hold at once.")


class TokenInfoSerializer(serializers.Serializer):
    jti = serializers.CharField()
    exp = serializers.IntegerField()
    scopes = serializers.ListField(child=serializers.CharField())


class UsageSerializer(serializers.Serializer):
    requests_remaining = serializers.IntegerField(help_text="Requests left in the rolling minute (this one counted).")
    tokens_remaining_today = serializers.IntegerField(help_text="LLM tokens left today (UTC).")
    retrieved_bytes_remaining = serializers.IntegerField(help_text="Retrieved bytes left this hour (UTC).")
    documents_stored = serializers.IntegerField(help_text="Documents the user holds.")
    bytes_stored = serializers.IntegerField(help_text="UTF-8 bytes of the documents the user holds.")


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    tier = TierSerializer(allow_null=True)
    scopes = serializers.ListField(child=serializers.CharField(), help_text="Effective scopes of this token.")
    token = TokenInfoSerializer()
    usage = UsageSerializer()
