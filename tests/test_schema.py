"""e2i_fix.schema against the reference validator (`jsonschema`, a test-only dependency).

The verdict (valid or not) must always be the same. Error locations are compared loosely:
`e2i_fix.schema` reports the failing branch of a `oneOf` (deeper than jsonschema's single
error at the `oneOf`) and does not repeat an allOf branch's failure as "unevaluated
properties" of the service, so the rule is that every jsonschema error has one of ours at or
below its path, and every one of ours is at or below one of jsonschema's.
"""

from __future__ import annotations

import copy
import csv
import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e2i_fix import schema
from e2i_fix.schema import SchemaError, format_path, load_schema, validate

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
REPO = Path(__file__).resolve().parents[1]


@functools.cache
def _reference() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema())


@pytest.fixture
def reference() -> jsonschema.Draft202012Validator:
    return _reference()


def _compose_files() -> list[str]:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="", encoding="utf-8") as f:
        return [
            row["file"] for row in csv.DictReader(f, delimiter="\t") if row["kind"] == "compose"
        ]


COMPOSE_FILES = _compose_files()
needs_corpus = pytest.mark.skipif(
    not COMPOSE_FILES, reason=f"compose corpus not found at {CORPUS} (MANIFEST.tsv missing)"
)


@functools.cache
def _load(name: str) -> Any:
    """Parsed once: callers that change a document must copy it first."""
    return yaml.safe_load((CORPUS / name).read_text(encoding="utf-8"))


def _agree(doc: Any, reference: jsonschema.Draft202012Validator) -> list[SchemaError]:
    """Assert both validators agree on `doc`; return our errors."""
    ours = validate(doc)
    theirs = list(reference.iter_errors(doc))
    assert bool(ours) == bool(theirs), (
        [str(e) for e in ours],
        [(list(e.absolute_path), e.message[:200]) for e in theirs],
    )
    mine = {e.path for e in ours}
    ref = {tuple(e.absolute_path) for e in theirs}
    for t in ref:
        assert any(m[: len(t)] == t for m in mine), f"jsonschema error at {t} not covered: {mine}"
    for m in mine:
        assert any(m[: len(t)] == t for t in ref), f"our error at {m} not under any of {ref}"
    return ours


# --- the vendored schema -----------------------------------------------------------------------


def test_vendored_files_match_check_jsonschema() -> None:
    vendor = pytest.importorskip("check_jsonschema.builtin_schemas.vendor")
    root = Path(vendor.__file__).parent
    data = REPO / "e2i_fix" / "data"
    assert (data / "compose-spec.json").read_bytes() == (root / "compose-spec.json").read_bytes()
    license_src = root / "licenses" / "LICENSE.compose-spec"
    assert (data / "LICENSE.compose-spec").read_bytes() == license_src.read_bytes()


def test_schema_compiles_and_is_cached() -> None:
    assert schema._root() is schema._root()
    assert load_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_subschema_compiles() -> None:
    # properties compile lazily, on first use: make sure all of them can
    compiler = schema._Compiler(load_schema())
    compiler.root()
    count = 0

    def walk(node: Any, where: str) -> None:
        nonlocal count
        if isinstance(node, dict):
            compiler.node(node, where)
            count += 1
            for key in ("properties", "patternProperties", "$defs"):
                for name, sub in node.get(key, {}).items():
                    walk(sub, f"{where}/{key}/{name}")
            for key in ("items", "additionalProperties", "unevaluatedProperties"):
                walk(node.get(key), f"{where}/{key}")
            for key in ("allOf", "anyOf", "oneOf"):
                for i, sub in enumerate(node.get(key, ())):
                    walk(sub, f"{where}/{key}/{i}")

    walk(load_schema(), "#")
    assert count > 400


@pytest.mark.parametrize(
    "bad",
    [
        {"const": 1},
        {"type": "object", "properties": {"a": {"minLength": 1}}},
        {"if": {"type": "string"}, "then": {}},
        {"$ref": "other.json#/x"},
        {"$ref": "#/$defs/missing"},
        {"type": "date"},
        {
            "type": "object",
            "properties": {"a": {"type": "object", "properties": {"b": {"not": {}}}}},
        },
        {"$defs": {"unused": {"contains": {}}}},
    ],
)
def test_unsupported_schema_features_fail_loudly(bad: dict[str, Any]) -> None:
    with pytest.raises(NotImplementedError):
        schema._Compiler(bad).root()


def test_import_is_cheap() -> None:
    code = (
        "import sys, e2i_fix.schema as s\n"
        "assert 'jsonschema' not in sys.modules\n"
        "assert s.validate({'services': {'a': {'image': 'x'}}}) == []\n"
        "assert 'jsonschema' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --- the corpus --------------------------------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_corpus_agrees_with_jsonschema(
    name: str, reference: jsonschema.Draft202012Validator
) -> None:
    _agree(_load(name), reference)


@needs_corpus
def test_corpus_verdicts(reference: jsonschema.Draft202012Validator) -> None:
    invalid = {name for name in COMPOSE_FILES if validate(_load(name))}
    # raw files, before interpolation: only opik's `pull_policy: ${VAR:-always}` breaks a pattern
    assert invalid == {"comet-ml__opik/deployment__docker-compose__docker-compose.yaml"}
    errors = validate(_load(next(iter(invalid))))
    assert errors and all(e.path[-1] == "pull_policy" for e in errors)
    assert all("does not match" in e.message for e in errors)


# --- hand-written cases ------------------------------------------------------------------------

S = {"image": "nginx"}  # a minimal valid service

CASES: list[tuple[str, Any, str | None]] = [
    # (id, document, expected "path: message" of the first error, or None if valid)
    ("minimal", {"services": {"api": S}}, None),
    ("empty-doc", None, "<root>: None is not of type 'object'"),
    ("top-level-list", [], "<root>: [] is not of type 'object'"),
    ("services-not-mapping", {"services": ["api"]}, "services: ['api'] is not of type 'object'"),
    ("service-null", {"services": {"api": None}}, "services.api: None is not of type 'object'"),
    (
        "unknown-service-key",
        {"services": {"api": {**S, "foo": 1}}},
        "services.api: additional property 'foo' is not allowed",
    ),
    (
        "unknown-top-level-key",
        {"services": {"api": S}, "bogus": {}},
        "<root>: additional property 'bogus' is not allowed",
    ),
    (
        "bad-service-name",
        {"services": {"bad name": S}},
        "services: additional property 'bad name' is not allowed",
    ),
    ("service-name-with-dot", {"services": {"my.svc": S}}, None),
    (
        "ports-float",
        {"services": {"api": {**S, "ports": 80.5}}},
        "services.api.ports: 80.5 is not of type 'array'",
    ),
    ("port-item-number", {"services": {"api": {**S, "ports": [8080, 12.5, "80:80"]}}}, None),
    (
        "port-item-null",
        {"services": {"api": {**S, "ports": [None]}}},
        "services.api.ports[0]: None is not of type 'number', 'string', 'object'",
    ),
    (
        "port-target-float",
        {"services": {"api": {**S, "ports": [{"target": 12.5}]}}},
        "services.api.ports[0].target: 12.5 is not of type 'integer', 'string'",
    ),
    (
        "port-published-float",
        {"services": {"api": {**S, "ports": [{"published": 12.5}]}}},
        "services.api.ports[0].published: 12.5 is not of type 'string', 'integer'",
    ),
    (
        "port-long-unknown-key",
        {"services": {"api": {**S, "ports": [{"target": 80, "bogus": 1}]}}},
        "services.api.ports[0]: additional property 'bogus' is not allowed",
    ),
    (
        "ports-duplicate",
        {"services": {"api": {**S, "ports": ["80:80", "80:80"]}}},
        "services.api.ports: has non-unique elements: '80:80'",
    ),
    (
        "memory-limit-list",
        {"services": {"api": {**S, "deploy": {"resources": {"limits": {"memory": ["1g"]}}}}}},
        "services.api.deploy.resources.limits.memory: ['1g'] is not of type 'string'",
    ),
    (
        "limits-unknown-key",
        {"services": {"api": {**S, "deploy": {"resources": {"limits": {"memroy": "1g"}}}}}},
        "services.api.deploy.resources.limits: additional property 'memroy' is not allowed",
    ),
    (
        "cpus-float",
        {"services": {"api": {**S, "deploy": {"resources": {"limits": {"cpus": 0.5}}}}}},
        None,
    ),
    ("cpus-string", {"services": {"api": {**S, "cpus": "0.5"}}}, None),
    (
        "cpus-bool",
        {"services": {"api": {**S, "cpus": True}}},
        "services.api.cpus: True is not of type 'number', 'string'",
    ),
    (
        "x-keys-everywhere-they-are-allowed",
        {
            "x-top": {"anything": [1, {"goes": None}]},
            "services": {
                "api": {
                    **S,
                    "x-svc": 1,
                    "ports": [{"target": 80, "x-port": True}],
                    "deploy": {"x-d": 1, "resources": {"x-r": 1, "limits": {"x-l": 1}}},
                    "logging": {"driver": "json-file", "x-log": 1},
                    "healthcheck": {"test": ["CMD", "true"], "x-hc": 1},
                    "depends_on": {"db": {"condition": "service_started", "x-dep": 1}},
                }
            },
            "networks": {"n": {"x-net": 1}},
            "volumes": {"v": {"x-vol": 1}},
        },
        None,
    ),
    (
        "x-key-in-environment-map-is-just-a-variable",
        {"services": {"api": {**S, "environment": {"x-foo": "1"}}}},
        None,
    ),
    (
        "x-key-value-in-limits-is-free",
        {"services": {"api": {**S, "deploy": {"resources": {"limits": {"x-note": [1, 2]}}}}}},
        None,
    ),
    (
        "x-key-under-services-is-a-service",
        {"services": {"api": S, "x-shared": {"image": "busybox", "foo": 1}}},
        "services.x-shared: additional property 'foo' is not allowed",
    ),
    (
        "depends-on-bad-condition",
        {"services": {"api": {**S, "depends_on": {"db": {"condition": "up"}}}}},
        (
            "services.api.depends_on.db.condition: 'up' is not one of "
            "['service_started', 'service_healthy', 'service_completed_successfully']"
        ),
    ),
    (
        "depends-on-missing-condition",
        {"services": {"api": {**S, "depends_on": {"db": {"restart": True}}}}},
        "services.api.depends_on.db: 'condition' is a required property",
    ),
    ("depends-on-list", {"services": {"api": {**S, "depends_on": ["db"]}}}, None),
    (
        "depends-on-string",
        {"services": {"api": {**S, "depends_on": "db"}}},
        "services.api.depends_on: 'db' is not of type 'array', 'object'",
    ),
    (
        "environment-value-list",
        {"services": {"api": {**S, "environment": {"A": [1]}}}},
        "services.api.environment.A: [1] is not of type 'string', 'number', 'boolean', 'null'",
    ),
    (
        "environment-duplicates",
        {"services": {"api": {**S, "environment": ["A=1", "A=1"]}}},
        "services.api.environment: has non-unique elements: 'A=1'",
    ),
    ("environment-null-value", {"services": {"api": {**S, "environment": {"A": None}}}}, None),
    ("integral-float-is-integer", {"services": {"api": {**S, "cpu_shares": 512.0}}}, None),
    ("integral-float-in-oneof", {"services": {"api": {**S, "cpu_count": 2.0}}}, None),
    (
        "fractional-float-is-not-integer",
        {"services": {"api": {**S, "cpu_count": 1.5}}},
        "services.api.cpu_count: 1.5 is not of type 'string', 'integer'",
    ),
    (
        "bool-is-not-integer",
        {"services": {"api": {**S, "ports": [{"target": True}]}}},
        "services.api.ports[0].target: True is not of type 'integer', 'string'",
    ),
    (
        "bool-is-not-number",
        {"services": {"api": {**S, "cpu_shares": False}}},
        "services.api.cpu_shares: False is not of type 'number', 'string'",
    ),
    (
        "minimum",
        {"services": {"api": {**S, "cpu_percent": -1}}},
        "services.api.cpu_percent: -1 is less than the minimum of 0",
    ),
    (
        "maximum",
        {"services": {"api": {**S, "cpu_percent": 101}}},
        "services.api.cpu_percent: 101 is more than the maximum of 100",
    ),
    (
        "pull-policy-pattern",
        {"services": {"api": {**S, "pull_policy": "sometimes"}}},
        (
            "services.api.pull_policy: 'sometimes' does not match '^(always|never|build|"
            "if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+)$'"
        ),
    ),
    ("pull-policy-every", {"services": {"api": {**S, "pull_policy": "every_12h"}}}, None),
    ("version-int", {"version": 3, "services": {}}, "version: 3 is not of type 'string'"),
    ("name-list", {"name": ["a"]}, "name: ['a'] is not of type 'string'"),
    (
        "restart-not-string",
        {"services": {"api": {**S, "restart": ["always"]}}},
        "services.api.restart: ['always'] is not of type 'string'",
    ),
    (
        "cascade-is-not-reported",  # a bad container_spec key does not make `image` "unexpected"
        {"services": {"api": {**S, "cap_add": "ALL"}}},
        "services.api.cap_add: 'ALL' is not of type 'array'",
    ),
    (
        "job-needs-a-trigger",
        {"jobs": {"j": {**S, "triggers": {}}}},
        "jobs.j.triggers: 'manual' is a required property or 'schedule' is a required property",
    ),
    ("job-manual", {"jobs": {"j": {**S, "triggers": {"manual": True}}}}, None),
    (
        "job-unknown-key",
        {"jobs": {"j": {**S, "triggers": {"manual": True}, "ports": [80], "bogus": 1}}},
        "jobs.j: additional property 'bogus' is not allowed",
    ),
    (
        "job-missing-triggers",
        {"jobs": {"j": S}},
        "jobs.j: 'triggers' is a required property",
    ),
    (
        "pre-start-hook-unknown-key",
        {"services": {"api": {**S, "pre_start": [{"image": "y", "per_replica": True, "zz": 1}]}}},
        "services.api.pre_start[0]: additional property 'zz' is not allowed",
    ),
    (
        "pre-start-hook-not-workload",  # ports belongs to workload_spec, not container_spec
        {"services": {"api": {**S, "pre_start": [{"image": "y", "ports": [80]}]}}},
        "services.api.pre_start[0]: additional property 'ports' is not allowed",
    ),
    (
        "service-hook-needs-command",
        {"services": {"api": {**S, "post_start": [{"user": "root"}]}}},
        "services.api.post_start[0]: 'command' is a required property",
    ),
    (
        "network-external-and-more",
        {"networks": {"n": {"external": True, "driver": "bridge"}}},
        None,
    ),
    (
        "volume-null-is-ok",
        {"volumes": {"data": None}, "services": {"api": {**S, "volumes": ["data:/data"]}}},
        None,
    ),
    (
        "date-is-not-a-string",
        yaml.safe_load("services:\n  api:\n    image: 2020-01-01\n"),
        "services.api.image: datetime.date(2020, 1, 1) is not of type 'string'",
    ),
    (
        "several-errors-come-in-document-order",
        {"services": {"api": {**S, "zz": 1, "cpus": [1]}}, "bad": 1},
        "services.api: additional property 'zz' is not allowed",
    ),
]


@pytest.mark.parametrize(("doc", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hand_written_cases(
    doc: Any, expected: str | None, reference: jsonschema.Draft202012Validator
) -> None:
    errors = _agree(doc, reference)
    if expected is None:
        assert errors == []
    else:
        assert errors, "expected an error"
        assert str(errors[0]) == expected, [str(e) for e in errors]


def test_errors_are_sorted_and_deduplicated() -> None:
    doc = {"services": {"api": {"zz": 1, "cpus": [1], "image": 3}, "db": None}, "bad": 1}
    assert [str(e) for e in validate(doc)] == [
        "services.api: additional property 'zz' is not allowed",
        "services.api.cpus: [1] is not of type 'number', 'string'",
        "services.api.image: 3 is not of type 'string'",
        "services.db: None is not of type 'object'",  # once, though two allOf branches say it
        "<root>: additional property 'bad' is not allowed",
    ]


def test_error_type() -> None:
    (err,) = validate({"services": {"api": {"image": "x", "ports": [{"target": 1.5}]}}})
    assert err == SchemaError(("services", "api", "ports", 0, "target"), err.message)
    with pytest.raises(AttributeError):
        err.message = "x"  # type: ignore[misc]
    assert hash(err) == hash(SchemaError(err.path, err.message))


def test_format_path() -> None:
    assert format_path(()) == "<root>"
    assert format_path(("services", "api", "ports", 0)) == "services.api.ports[0]"
    assert format_path(("services", "my.svc", "x-y")) == 'services["my.svc"].x-y'
    assert format_path(("a", 'q"uote')) == 'a["q\\"uote"]'


def test_long_values_are_shortened() -> None:
    (err,) = validate({"services": {"api": {"image": ["x" * 500]}}})
    assert len(err.message) < 120 and "..." in err.message


def test_non_string_keys_do_not_crash() -> None:
    # YAML allows them (`1: x`, `on: x` -> True); jsonschema crashes on them in
    # patternProperties. Here they match no property pattern: reported, not fatal.
    errors = validate({"services": {"api": {"image": "x", 80: 1, True: 2}}})
    assert [str(e) for e in errors] == [
        "services.api: additional property 80 is not allowed",
        "services.api: additional property True is not allowed",
    ]
    (err,) = validate({"services": {"api": {"image": "x", "sysctls": {1: [2]}}}})
    assert str(err) == "services.api.sysctls: additional property 1 is not allowed"
    (err,) = validate({"x-a": {1: 2}, "services": {"api": {"image": "x", "labels": [1]}}})
    assert err.path == ("services", "api", "labels", 0)


# --- mutated corpus documents (hypothesis) -----------------------------------------------------


def _property_names(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                out.update(value)
            _property_names(value, out)
    elif isinstance(node, list):
        for value in node:
            _property_names(value, out)
    return out


KEYS = st.one_of(
    st.sampled_from(sorted(_property_names(load_schema(), set()))),
    st.sampled_from(["x-extra", "x-", "foo", "bad key", "", "api", "db", "80"]),
    st.text(max_size=6),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2000, max_value=70000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from([1.0, 0.5, 100.0]),
    st.text(max_size=8),
    st.sampled_from(
        [
            "80:80", "service_healthy", "up", "always", "every_3d", "sometimes", "json-file",
            "512m", "A=1", "${VAR:-x}", "host", "bridge", "none",
        ]
    ),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=6,
)


def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(node, dict):
        out.append(path)
        for key, value in node.items():
            out.extend(_containers(value, (*path, key)))
    elif isinstance(node, list):
        out.append(path)
        for i, value in enumerate(node):
            out.extend(_containers(value, (*path, i)))
    return out


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn, name: str | None = None) -> Any:
    doc = copy.deepcopy(_load(name if name is not None else draw(st.sampled_from(COMPOSE_FILES))))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _containers(doc)
        if not paths:
            break
        # favour the parts the schema says most about: services and what is in them
        deep = [p for p in paths if len(p) >= 2 and p[0] in ("services", "networks", "volumes")]
        target = _at(doc, draw(st.sampled_from(deep or paths)))
        action = draw(st.sampled_from(["set", "set", "replace", "delete"]))
        if isinstance(target, dict):
            keys = list(target)
            if action == "set" or not keys:
                target[draw(KEYS)] = draw(VALUES)
            elif action == "replace":
                target[draw(st.sampled_from(keys))] = draw(VALUES)
            else:
                del target[draw(st.sampled_from(keys))]
        elif isinstance(target, list):
            if action == "set" or not target:
                target.append(draw(VALUES))
            elif action == "replace":
                target[draw(st.integers(0, len(target) - 1))] = draw(VALUES)
            else:
                del target[draw(st.integers(0, len(target) - 1))]
    return doc


@needs_corpus
@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(doc=mutated_documents())
def test_mutated_corpus_agrees_with_jsonschema(doc: Any) -> None:
    _agree(doc, _reference())


SECTIONS = st.sampled_from(["services", "networks", "volumes", "configs", "secrets", "jobs"])
NAMES = st.sampled_from(["api", "db", "x-shared", "bad name", "my.svc"])


@st.composite
def synthetic_documents(draw: st.DrawFn) -> Any:
    """Small documents built from the schema's own property names: reaches every corner."""
    doc: dict[str, Any] = {}
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        entry = draw(st.dictionaries(KEYS, VALUES, max_size=4))
        if draw(st.booleans()):
            entry.setdefault("image", "nginx")
        doc.setdefault(draw(SECTIONS), {})[draw(NAMES)] = entry
    return doc


@settings(max_examples=300, deadline=None, database=None)
@given(doc=synthetic_documents())
def test_synthetic_documents_agree_with_jsonschema(doc: Any) -> None:
    _agree(doc, _reference())


def test_the_shipped_schema_judges_the_top_levels_key_by_key() -> None:
    # Verification checks only the keys a run changed because of this; a schema update that
    # adds a rule over several keys (`required`, `oneOf`...) there turns that off.
    assert schema.keys_judged_alone()


@pytest.mark.parametrize("where", [(), ("$defs", "container_spec"), ("properties", "services")])
def test_a_rule_over_several_keys_turns_the_key_by_key_check_off(monkeypatch: pytest.MonkeyPatch,
                                                                 where: tuple[str, ...]) -> None:
    spec = copy.deepcopy(load_schema())
    functools.reduce(lambda d, k: d[k], where, spec)["required"] = ["image"]
    monkeypatch.setattr(schema, "load_schema", lambda: spec)
    schema.keys_judged_alone.cache_clear()
    try:
        assert not schema.keys_judged_alone()
    finally:
        schema.keys_judged_alone.cache_clear()


@needs_corpus
@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_new_errors_are_found_as_well_in_the_changed_keys_alone(data: st.DataObject) -> None:
    from e2i_fix.verify import pruned

    name = data.draw(st.sampled_from(COMPOSE_FILES))
    before = _load(name)
    after = data.draw(mutated_documents(name))
    if not isinstance(before, dict) or not isinstance(after, dict):
        return

    def new_errors(old: Any, new: Any) -> set[tuple[str | int, ...]]:
        return {e.path for e in validate(new)} - {e.path for e in validate(old)}

    whole = new_errors(before, after)
    alone = new_errors(*pruned(before, after))
    # Every new error is still found. The changed keys alone may find more: the whole-document
    # comparison forgives an error at a place (a mapping) where an untouched key had one before.
    assert whole <= alone
    assert alone - whole <= {e.path for e in validate(before)}
