"""Validate raw JSON bodies against OpenAI's published OpenAPI document.

The document lives in ``shared/reference/openai-openapi.json`` beside the repository
(``../shared/reference/openai-openapi.json`` from the repo root). ``TOLLGATE_OPENAPI_JSON``
overrides the location.

Dialect handling
----------------
* ``openapi: 3.1.x`` — schemas are JSON Schema 2020-12 (or the document's
  ``jsonSchemaDialect``); validated with ``Draft202012Validator``.
* ``openapi: 3.0.x`` — schemas are the OpenAPI 3.0 subset of draft 4/5 plus ``nullable``;
  validated with ``Draft4Validator`` after translating ``nullable``.

OpenAI's document declares 3.1.0 but still carries OpenAPI 3.0 leftovers: ``nullable: true``
on ~110 schemas (among them ``CreateChatCompletionStreamResponse.choices[].finish_reason`` and
``.usage``, which are ``null`` on almost every real chunk) and a few boolean
``exclusiveMinimum``. 2020-12 has no ``nullable`` keyword, so a literal 3.1 reading would
silently ignore it and reject the ``null`` that the document explicitly allows (and that
OpenAI itself sends). Each leftover is translated into its exact 3.1 equivalent before
validation — ``type: X, nullable: true`` becomes ``type: [X, "null"]`` (``null`` added to an
``enum`` too), a ``nullable`` ``$ref``/composition becomes ``anyOf: [<it>, {type: null}]``, a
boolean ``exclusiveMinimum`` becomes the numeric form — so the schema accepts exactly what
its author wrote, no more. Nothing else is relaxed: ``required``, ``enum``, ``type``,
``additionalProperties`` and (known) ``format`` keywords are all enforced, and
``test_schema_helper.py`` proves the validator still rejects broken bodies.

``$ref: "#/components/schemas/…"`` resolves against the whole document through a
``referencing.Registry`` in which the document is registered under ``DOC_URI``.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft4Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012, specification_with

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC_URI = "urn:tollgate-e2e:openai-openapi.json"
_COMPOSITION = ("$ref", "allOf", "anyOf", "oneOf", "not", "if")


class SchemaDocumentMissing(RuntimeError):
    pass


def openapi_path() -> Path:
    env = os.environ.get("TOLLGATE_OPENAPI_JSON")
    if env:
        return Path(env).resolve()
    return (REPO_ROOT.parent / "shared" / "reference" / "openai-openapi.json").resolve()


def _translate_30_leftovers(node: Any, *, target_2020: bool) -> Any:
    """Return a copy of ``node`` with OpenAPI 3.0 ``nullable`` (and, for a 2020-12 target,
    boolean ``exclusiveMinimum``/``exclusiveMaximum``) rewritten into plain JSON Schema."""
    if isinstance(node, list):
        return [_translate_30_leftovers(v, target_2020=target_2020) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _translate_30_leftovers(v, target_2020=target_2020) for k, v in node.items()}

    if target_2020:
        for excl, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(out.get(excl), bool):
                flag = out.pop(excl)
                if flag and bound in out:
                    out[excl] = out.pop(bound)

    if "nullable" not in out:
        return out
    nullable = out.pop("nullable")
    if nullable is not True:
        return out
    has_composition = any(k in out for k in _COMPOSITION)
    if "type" in out and not has_composition:
        t = out["type"]
        types = list(t) if isinstance(t, list) else [t]
        if "null" not in types:
            types.append("null")
        out["type"] = types
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out
    if "type" not in out and "enum" not in out and not has_composition:
        # No constraint on the type at all (e.g. only a description): null already valid.
        return out
    desc = {k: out[k] for k in ("description", "title") if k in out}
    return {**desc, "anyOf": [out, {"type": "null"}]}


class OpenAPISchemas:
    def __init__(self, path: Path | None = None):
        self.path = path or openapi_path()
        if not self.path.is_file():
            raise SchemaDocumentMissing(
                f"OpenAI OpenAPI document not found at {self.path}. The e2e conformance tests "
                "need shared/reference/openai-openapi.json beside the repository (i.e. "
                "../shared/reference/openai-openapi.json from the repo root), or set "
                "TOLLGATE_OPENAPI_JSON to its path."
            )
        raw = json.loads(self.path.read_text(encoding="utf-8"))
        self.openapi_version = str(raw.get("openapi", ""))
        if self.openapi_version.startswith("3.1"):
            dialect = raw.get("jsonSchemaDialect", "https://json-schema.org/draft/2020-12/schema")
            self.validator_cls = jsonschema.validators.validator_for(
                {"$schema": dialect}, default=Draft202012Validator
            )
            spec = DRAFT202012
            if dialect != "https://json-schema.org/draft/2020-12/schema":
                spec = specification_with(dialect, default=DRAFT202012)
            target_2020 = self.validator_cls is Draft202012Validator
        elif self.openapi_version.startswith("3.0"):
            self.validator_cls = Draft4Validator
            spec = DRAFT4
            target_2020 = False
        else:
            raise RuntimeError(
                f"{self.path}: unsupported OpenAPI version {self.openapi_version!r} (need 3.0 or 3.1)"
            )
        self.document = _translate_30_leftovers(raw, target_2020=target_2020)
        self.schemas: dict[str, Any] = self.document["components"]["schemas"]
        resource = Resource.from_contents(self.document, default_specification=spec)
        self.registry: Registry = Registry().with_resource(DOC_URI, resource)

    @functools.lru_cache(maxsize=None)
    def validator(self, name: str):
        if name not in self.schemas:
            raise KeyError(f"components.schemas.{name} not in {self.path}")
        self.validator_cls.check_schema(self.schemas[name])
        root = {"$ref": f"{DOC_URI}#/components/schemas/{name}"}
        return self.validator_cls(
            root, registry=self.registry, format_checker=self.validator_cls.FORMAT_CHECKER
        )

    def errors(self, name: str, instance: Any) -> list[str]:
        """All violations, as readable strings (empty list: valid)."""
        out = []
        for err in sorted(self.validator(name).iter_errors(instance), key=lambda e: list(e.path)):
            leaves = _leaf_errors(err)
            for leaf in leaves:
                where = "/".join(str(p) for p in leaf.absolute_path) or "<root>"
                out.append(f"at {where}: {leaf.message}")
        return out

    def validate(self, name: str, instance: Any) -> None:
        """Raise AssertionError naming every violation of ``components.schemas.<name>``."""
        errs = self.errors(name, instance)
        if errs:
            body = json.dumps(instance, indent=1)
            if len(body) > 4000:
                body = body[:4000] + " …"
            raise AssertionError(
                f"body does not validate against components.schemas.{name} "
                f"({self.path.name}, OpenAPI {self.openapi_version}):\n  - "
                + "\n  - ".join(errs)
                + f"\nbody: {body}"
            )


def _leaf_errors(err: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """For anyOf/oneOf failures, surface the most relevant branch error as well."""
    if not err.context:
        return [err]
    best = jsonschema.exceptions.best_match(err.context)
    return [err, *([best] if best is not None else [])]


@functools.lru_cache(maxsize=1)
def load() -> OpenAPISchemas:
    return OpenAPISchemas()
