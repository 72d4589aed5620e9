"""The rasa server checks every answer of the action server against a JSON schema with
`jsonschema.validate`, which first checks the schema itself against its meta-schema, on
every call. The same check here, each schema checked once and its validator kept (figures:
docs/benchmarks.md, "Where a turn's time goes")."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
from jsonschema import exceptions, validators

_uncached_validate = jsonschema.validate


@lru_cache(maxsize=64)
def _validator(schema_json: str, cls: Any) -> Any:
    schema = json.loads(schema_json)
    cls = cls or validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """`jsonschema.validate`, raising the same errors."""
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):
        return _uncached_validate(instance, schema, cls, *args, **kwargs)
    if args or kwargs:
        return _uncached_validate(instance, schema, cls, *args, **kwargs)
    error = exceptions.best_match(_validator(key, cls).iter_errors(instance))
    if error is not None:
        raise error


def install() -> None:
    """Rasa imports `validate` from jsonschema at each call, so this takes effect at once."""
    jsonschema.validate = validate
