"""The admin API's OpenAPI document (SPEC §8): public, a valid OpenAPI 3 document, and
it describes the routes the gateway serves (each documented path answers, none 404s)."""

import re

from openapi_spec_validator import validate


def test_openapi_document_is_valid_and_public(http):
    r = http.get("/admin/api/openapi.json")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["openapi"].startswith("3."), doc.get("openapi")
    validate(doc)  # raises with the first violation
    paths = doc["paths"]
    for expected in ("/admin/api/login", "/admin/api/keys", "/admin/api/keys/{id}",
                     "/admin/api/upstreams", "/admin/api/usage", "/admin/api/logs",
                     "/admin/api/costs", "/admin/api/alerts/rules", "/admin/api/alerts/events"):
        assert expected in paths, sorted(paths)


def test_every_documented_path_exists_and_needs_a_session(http):
    doc = http.get("/admin/api/openapi.json").json()
    for path, operations in doc["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            if method not in ("get", "post", "patch", "delete"):
                continue
            r = http.request(method.upper(), concrete, json={} if method in ("post", "patch") else None)
            assert r.status_code != 404 or "unknown_url" not in r.text, (method, path, r.text)
            if path not in ("/admin/api/login", "/admin/api/openapi.json"):
                assert r.status_code == 401, (method, path, r.status_code, r.text)
