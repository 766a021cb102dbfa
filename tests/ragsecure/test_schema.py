"""The OpenAPI 3 schema: public, lists every token endpoint, the bearer scheme and the error responses in the one shape."""

import json

import pytest

ERROR_REF = "#/components/schemas/Error"
PROTECTED = [("/api/v1/auth/me/", "get"), ("/api/v1/auth/token/revoke/", "post")]
UNAUTHENTICATED = [("/api/v1/auth/token/", "post"), ("/api/v1/auth/token/refresh/", "post")]


@pytest.fixture(scope="module")
def schema() -> dict:
    """The schema the endpoint serves, generated once without a request (so no audit entry outlives a test)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


def operation(schema: dict, path: str, method: str) -> dict:
    return schema["paths"][path][method]


def requires_bearer(schema: dict, op: dict) -> bool:
    requirements = op.get("security", schema.get("security", []))
    return bool(requirements) and {} not in requirements and any("bearerAuth" in item for item in requirements)


def error_schema_ref(op: dict, status: str) -> str | None:
    response = op["responses"].get(status)
    if response is None:
        return None
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


def test_schema_is_public_openapi_3(client):
    response = client.get("/api/v1/schema/", HTTP_HOST="localhost", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert json.loads(response.content)["openapi"].startswith("3")


def test_schema_json_format(schema):
    assert schema["openapi"].startswith("3")
    assert schema["info"]["title"]


@pytest.mark.parametrize(
    "path, method",
    [*PROTECTED, *UNAUTHENTICATED, ("/.well-known/jwks.json", "get"), ("/healthz", "get"), ("/readyz", "get")],
)
def test_spec_path_present(schema, path, method):
    assert method in schema["paths"].get(path, {}), sorted(schema["paths"])


def test_bearer_security_scheme(schema):
    scheme = schema["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http"
    assert scheme["scheme"].lower() == "bearer"


def test_error_component_has_the_one_shape(schema):
    schemas = schema["components"]["schemas"]
    error = schemas["Error"]
    assert error["required"] == ["error"]
    detail_ref = error["properties"]["error"].get("$ref") or error["properties"]["error"]["allOf"][0]["$ref"]
    detail = schemas[detail_ref.rsplit("/", 1)[1]]
    assert {"code", "message", "request_id", "fields"} <= set(detail["properties"])
    assert {"code", "message", "request_id"} <= set(detail["required"])


@pytest.mark.parametrize("path, method", PROTECTED)
def test_protected_operation_requires_bearer(schema, path, method):
    assert requires_bearer(schema, operation(schema, path, method))


@pytest.mark.parametrize("path, method", PROTECTED)
@pytest.mark.parametrize("status", ["401", "403"])
def test_protected_operation_lists_auth_errors(schema, path, method, status):
    assert error_schema_ref(operation(schema, path, method), status) == ERROR_REF


@pytest.mark.parametrize("path, method", UNAUTHENTICATED)
def test_token_endpoints_are_unauthenticated(schema, path, method):
    assert not requires_bearer(schema, operation(schema, path, method))


@pytest.mark.parametrize("path, method", UNAUTHENTICATED)
def test_token_endpoints_list_validation_error(schema, path, method):
    assert error_schema_ref(operation(schema, path, method), "400") == ERROR_REF


def test_token_obtain_documents_request_and_pair(schema):
    op = operation(schema, "/api/v1/auth/token/", "post")
    request_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = schema["components"]["schemas"][request_ref.rsplit("/", 1)[1]]
    assert {"username", "password"} <= set(request["required"])
    pair_ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    pair = schema["components"]["schemas"][pair_ref.rsplit("/", 1)[1]]
    assert {"access", "refresh", "token_type", "expires_in", "scopes"} <= set(pair["properties"])


def test_password_is_write_only_never_in_a_response(schema):
    for name, component in schema["components"]["schemas"].items():
        if "password" in component.get("properties", {}):
            assert name.endswith("Request") or component["properties"]["password"].get("writeOnly"), name


def test_the_schema_is_generated_once_however_many_first_requests_race(monkeypatch):
    """400 parallel first requests once met drf-spectacular's lazy set-up mid-way (3 of them answered 500)."""
    import threading

    from drf_spectacular.generators import SchemaGenerator

    from ragsecure import schema_api as schema

    generated = []
    real = SchemaGenerator.get_schema

    def counting(self, *args, **kwargs):
        generated.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counting)
    monkeypatch.setattr(schema, "_schema", None)
    barrier, documents = threading.Barrier(32), []

    def first_request() -> None:
        barrier.wait(timeout=10)
        documents.append(schema.schema_document())

    threads = [threading.Thread(target=first_request) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(generated) == 1
    assert len(documents) == 32 and all(document is documents[0] for document in documents)
    assert "/api/v1/query/" in documents[0]["paths"]


def test_the_wsgi_entry_point_generates_the_schema_at_start_up():
    from ragsecure import schema_api, wsgi

    assert wsgi.application is not None and schema_api._schema is not None
