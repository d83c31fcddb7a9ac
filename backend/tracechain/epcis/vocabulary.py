"""Which CBV and GS1 vocabulary IRIs an EPCIS document names, as JSON-LD expansion reads it.

GS1's reference hash generator expands each document with a JSON-LD processor and keeps every
string of the expanded form that starts with `https://ref.gs1.org/cbv` or `https://gs1.org/voc`:
bare values such as `"bizStep": "shipping"` become `https://ref.gs1.org/cbv/BizStep-shipping`
there. It then replaces, anywhere in the document, each string that exactly one of those IRIs
ends with (after a `-` or `/`) by that IRI. The event hash depends on that set, so this module
computes it - without a JSON-LD library, which made the reference cost some 3 ms an event.

It implements the part of JSON-LD 1.1 expansion that decides those strings: context processing
(the bundled EPCIS 2.0 context, inline context objects with prefixes and term definitions,
property-scoped and embedded contexts, `@vocab`, protected terms) and the expansion of keys,
`@id`, `@type` and typed values. Remote contexts are refused, never fetched (the two EPCIS 2.0
context URLs are served from the copy in `data/`). JSON-LD features no EPCIS document needs
(`@base`, `@import`, `@reverse`, `@nest`, maps by index, language, id, type or graph, type-scoped
contexts) raise :class:`UnsupportedContext` rather than guess.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Final

from tracechain.errors import TracechainError

EPCIS_CONTEXT: Final = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
BUNDLED_CONTEXTS: Final = frozenset({EPCIS_CONTEXT, "https://gs1.github.io/EPCIS/epcis-context.jsonld"})
"""The JSON-LD contexts served from the bundled copy: the only URLs a document may name.

GS1's older URL serves a copy that differs only in one datatype (`xsd:decimal` for quantities),
which never reaches the hash."""

VOCABULARY_PREFIXES: Final = ("https://ref.gs1.org/cbv", "https://gs1.org/voc")

_KEYWORD_LIKE: Final = re.compile(r"^@[a-zA-Z]+$")
_ABSOLUTE_IRI: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*|_):[^\s]*$")
_ENDS_WITH_GEN_DELIM: Final = re.compile(r".*[:/\?#\[\]@]$", re.DOTALL)
_KEYWORDS: Final = frozenset(
    {
        "@base", "@container", "@context", "@default", "@direction", "@embed", "@explicit",
        "@first", "@graph", "@id", "@import", "@included", "@index", "@json", "@language", "@list",
        "@nest", "@none", "@omitDefault", "@propagate", "@protected", "@preserve", "@requireAll",
        "@reverse", "@set", "@type", "@value", "@version", "@vocab",
    }
)  # fmt: skip
_CONTAINERS: Final = frozenset({"@set", "@list"})
_IGNORED_CONTEXT_KEYS: Final = frozenset({"@version", "@language", "@direction", "@protected"})
_UNSUPPORTED_CONTEXT_KEYS: Final = frozenset({"@base", "@import", "@propagate"})
_UNSUPPORTED_TERM_KEYS: Final = frozenset({"@reverse", "@nest", "@index"})


class ContextError(TracechainError, ValueError):
    """A JSON-LD context that expansion refuses, as a JSON-LD processor would."""


class UnsupportedContext(ContextError):
    """A JSON-LD feature that no EPCIS document needs and this module does not implement."""


class RemoteContext(ContextError):
    """A context URL that would have to be fetched."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"remote JSON-LD context {url!r}")


@dataclass(frozen=True, slots=True)
class Term:
    iri: str | None
    type: str | None = None
    context: Any = None  # a property-scoped context, as written
    prefix: bool = False
    protected: bool = False
    container: Any = None


@dataclass(slots=True, eq=False)
class Context:
    """An active context: term definitions and @vocab. Scoped contexts derived from it are cached."""

    terms: dict[str, Term | None] = field(default_factory=dict)
    vocab: str | None = None
    key: str = ""  # names how the context was built, for the cache of processed contexts
    _scoped: dict[int, Context] = field(default_factory=dict)
    _iris: dict[tuple[str, bool], str | None] = field(default_factory=dict)
    _properties: dict[str, tuple[str | None, Context | None, Term | None]] = field(default_factory=dict)

    def iri(self, value: str, vocab: bool) -> str | None:
        """:meth:`expand_iri`, cached: documents repeat their values."""
        cache_key = (value, vocab)
        try:
            return self._iris[cache_key]
        except KeyError:
            pass
        expanded = self._iris[cache_key] = self.expand_iri(value, vocab)
        if len(self._iris) > 4096:
            self._iris.clear()
        return expanded

    def property(self, key: str) -> tuple[str | None, Context | None, Term | None]:
        """How a node's key expands: (keyword, None, None) for a keyword; (IRI, the context its
        value is read with, its term definition there) for a property; None first to drop it."""
        resolved = self._properties.get(key)
        if resolved is None:
            resolved = self._property(key)
            if len(self._properties) > 4096:
                self._properties.clear()
            self._properties[key] = resolved
        return resolved

    def _property(self, key: str) -> tuple[str | None, Context | None, Term | None]:
        expanded = self.expand_iri(key, vocab=True)
        if expanded is None:
            return None, None, None
        if expanded.startswith("@"):
            return expanded, None, None
        if not _ABSOLUTE_IRI.match(expanded):
            return None, None, None
        term = self.terms.get(key)
        scoped = self.scoped(term) if term is not None and term.context is not None else self
        return expanded, scoped, scoped.terms.get(key)

    def scoped(self, term: Term) -> Context:
        """This context with a term's property-scoped context applied (protection overridden)."""
        derived = self._scoped.get(id(term))
        if derived is None:
            derived = process(self, term.context, override_protected=True)
            self._scoped[id(term)] = derived
        return derived

    def expand_iri(self, value: str, vocab: bool) -> str | None:
        """JSON-LD IRI expansion; a relative IRI is returned as written (it is never a vocabulary
        IRI: resolved against any http base it stays http)."""
        if value in _KEYWORDS:
            return value
        if _KEYWORD_LIKE.match(value):
            return None
        if vocab and value in self.terms:
            term = self.terms[value]
            return None if term is None else term.iri
        prefix, colon, suffix = value.partition(":")
        if colon and prefix:
            if prefix == "_" or suffix.startswith("//"):
                return value
            mapping = self.terms.get(prefix)
            if mapping is not None and mapping.prefix and mapping.iri is not None:
                return mapping.iri + suffix
            if _ABSOLUTE_IRI.match(value):
                return value
        if vocab and self.vocab is not None:
            return self.vocab + value
        return value


_PROCESSED: dict[tuple[str, str, bool], Context] = {}
_PROCESSED_LIMIT: Final = 1024


def process(active: Context, local: Any, override_protected: bool = False) -> Context:
    """The active context after a local context (string, object, null or a list of them).

    Processed contexts are cached by what they were built from: documents of one sender repeat
    one inline context, and the scoped contexts derived from a context are cached on it.
    """
    try:
        written = json.dumps(local, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ContextError(f"a JSON-LD context must be JSON: {exc}") from exc
    cache_key = (active.key, written, override_protected)
    result = _PROCESSED.get(cache_key)
    if result is None:
        result = _process(active, local, override_protected)
        if len(_PROCESSED) >= _PROCESSED_LIMIT:
            _PROCESSED.clear()
        # Every context but the empty one gets a key naming its derivation, so contexts derived
        # from it are cached apart from those derived from any other.
        if not result.key and result is not _empty():
            result.key = (
                f"{active.key}|{hashlib.sha256(written.encode()).hexdigest()}{int(override_protected)}"
            )
            _PROCESSED[cache_key] = result
    return result


def _process(active: Context, local: Any, override_protected: bool) -> Context:
    result = active
    for item in local if isinstance(local, list) else [local]:
        if item is None:
            if not override_protected and any(t is not None and t.protected for t in result.terms.values()):
                raise ContextError("a context cannot be nullified while it has protected terms")
            result = _empty()
        elif isinstance(item, str):
            if item not in BUNDLED_CONTEXTS:
                raise RemoteContext(item)
            result = _epcis_context() if not result.terms else _apply(result, _bundled()["@context"], False)
        elif isinstance(item, dict):
            result = _apply(result, item, override_protected)
        else:
            raise ContextError(f"invalid local context {item!r}")
    return result


def _apply(active: Context, local: dict[str, Any], override_protected: bool) -> Context:
    imported = local.get("@import")
    if isinstance(imported, str) and imported not in BUNDLED_CONTEXTS:
        raise RemoteContext(imported)
    for key in local:
        if key in _UNSUPPORTED_CONTEXT_KEYS:
            raise UnsupportedContext(f"{key} in a JSON-LD context")
    result = Context(dict(active.terms), active.vocab)
    if "@vocab" in local:
        vocab = local["@vocab"]
        if vocab is None:
            result.vocab = None
        elif isinstance(vocab, str):
            expanded = result.expand_iri(vocab, vocab=True)
            if expanded is None or not (_ABSOLUTE_IRI.match(expanded) or expanded.startswith("_:")):
                raise UnsupportedContext(f"relative @vocab {vocab!r}")
            result.vocab = expanded
        else:
            raise ContextError(f"invalid @vocab {vocab!r}")
    protected = local.get("@protected", False) is True
    defined: dict[str, bool] = {}
    for term in local:
        if term in _IGNORED_CONTEXT_KEYS or term == "@vocab":
            continue
        _define(result, local, term, defined, protected, override_protected)
    return result


def _define(
    context: Context,
    local: dict[str, Any],
    term: str,
    defined: dict[str, bool],
    protected: bool,
    override_protected: bool,
) -> None:
    """JSON-LD's Create Term Definition, for the features this module supports."""
    if defined.get(term) is True:
        return
    if term in defined:
        raise ContextError(f"cyclic IRI mapping for {term!r}")
    defined[term] = False
    if term in _KEYWORDS or _KEYWORD_LIKE.match(term):
        raise ContextError(f"keyword {term!r} cannot be redefined")
    previous = context.terms.get(term)
    value = local[term]
    simple = isinstance(value, str)
    if value is None:
        definition: Term | None = None
    elif isinstance(value, str | dict):
        definition = _term(context, local, term, value if isinstance(value, dict) else {"@id": value},
                           simple, defined, protected)  # fmt: skip
    else:
        raise ContextError(f"invalid term definition for {term!r}")
    if previous is not None and previous.protected and not override_protected:
        if definition is None or (
            definition.iri,
            definition.type,
            definition.context,
            definition.container,
        ) != (
            previous.iri,
            previous.type,
            previous.context,
            previous.container,
        ):
            raise ContextError(f"protected term {term!r} cannot be redefined")
        definition = previous
    context.terms[term] = definition
    defined[term] = True


def _term(
    context: Context,
    local: dict[str, Any],
    term: str,
    value: dict[str, Any],
    simple: bool,
    defined: dict[str, bool],
    protected: bool,
) -> Term | None:
    for key in value:
        if key in _UNSUPPORTED_TERM_KEYS:
            raise UnsupportedContext(f"{key} in the definition of {term!r}")
    container = value.get("@container")
    for entry in container if isinstance(container, list) else [container]:
        if entry is not None and entry not in _CONTAINERS:
            raise UnsupportedContext(f"@container {entry!r} in the definition of {term!r}")
    colon = term.find(":")
    iri: str | None
    if "@id" in value and value["@id"] != term:
        iri = value["@id"]
        if iri is None:
            return None
        if not isinstance(iri, str):
            raise ContextError(f"invalid @id in the definition of {term!r}")
        if iri not in _KEYWORDS:
            if _KEYWORD_LIKE.match(iri):
                return None
            iri = _expand_in_definition(context, local, iri, defined)
            if iri is None or not (iri in _KEYWORDS or _ABSOLUTE_IRI.match(iri) or iri.startswith("_:")):
                raise ContextError(f"invalid IRI mapping for {term!r}")
    elif colon > 0:
        prefix = term[:colon]
        if prefix in local:
            _define(context, local, prefix, defined, protected, False)
        mapping = context.terms.get(prefix)
        iri = mapping.iri + term[colon + 1 :] if mapping is not None and mapping.iri else term
    elif context.vocab is not None:
        iri = context.vocab + term
    else:
        raise ContextError(f"no IRI mapping for {term!r}")
    type_ = value.get("@type")
    if type_ is not None:
        if not isinstance(type_, str):
            raise ContextError(f"invalid @type in the definition of {term!r}")
        if type_ not in ("@id", "@vocab", "@json", "@none"):
            type_ = _expand_in_definition(context, local, type_, defined)
            if type_ is None or not _ABSOLUTE_IRI.match(type_):
                raise ContextError(f"invalid type mapping for {term!r}")
    scoped = value.get("@context")
    if scoped is not None or "@context" in value:
        # A JSON-LD processor reads a scoped context when the term is defined, so a remote one
        # is refused even if no key uses the term.
        _process(context, scoped, override_protected=True)
    is_prefix = bool(value["@prefix"]) if "@prefix" in value else (
        simple and colon < 0 and (iri.startswith("_:") or bool(_ENDS_WITH_GEN_DELIM.match(iri)))
    )  # fmt: skip
    return Term(
        iri=iri,
        type=type_,
        context=scoped if "@context" in value else None,
        prefix=is_prefix,
        protected=value.get("@protected", protected) is True,
        container=container,
    )


def _expand_in_definition(
    context: Context, local: dict[str, Any], value: str, defined: dict[str, bool]
) -> str | None:
    """IRI expansion while a context is read: terms it uses are defined first."""
    if value in local and defined.get(value) is not True:
        _define(context, local, value, defined, False, False)
    prefix, colon, _ = value.partition(":")
    if colon and prefix in local and not defined.get(prefix):
        _define(context, local, prefix, defined, False, False)
    return context.expand_iri(value, vocab=True)


@cache
def _bundled() -> dict[str, Any]:
    text = resources.files("tracechain.epcis").joinpath("data/epcis-context.jsonld").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _epcis_context() -> Context:
    context = _apply(_empty(), _bundled()["@context"], False)
    context.key = EPCIS_CONTEXT
    return context


@cache
def _empty() -> Context:
    return Context()


# ---------------------------------------------------------------- expansion


def vocabulary_iris(document: Any) -> set[str]:
    """Every CBV or GS1 vocabulary IRI among the strings of the document's expanded form."""
    found: list[str] = []
    _node(_empty(), document, found)
    return {iri for iri in found if iri.startswith(VOCABULARY_PREFIXES)}


def _node(context: Context, node: dict[str, Any], found: list[str]) -> None:
    if "@context" in node:
        context = process(context, node["@context"])
    keys = [(key, context.property(key)) for key in node if key != "@context"]
    if any(resolved[0] == "@value" for _, resolved in keys):
        for key, (expanded, _, _) in keys:
            value = node[key]
            if expanded == "@value" and isinstance(value, str):
                found.append(value)
            elif expanded == "@type" and isinstance(value, str):
                _add(found, context.iri(value, vocab=True))
        return
    for key, (expanded, scoped, term) in keys:
        if expanded is None:
            continue  # JSON-LD drops a key that is not an IRI, and all below it
        if scoped is None:
            _keyword(context, expanded, node[key], found)
        else:
            _value(scoped, term, node[key], found)


def _keyword(context: Context, keyword: str, value: Any, found: list[str]) -> None:
    if keyword == "@id":
        if not isinstance(value, str):
            raise ContextError(f"@id must be a string, not {value!r}")
        _add(found, context.iri(value, vocab=False))
    elif keyword == "@type":
        for each in value if isinstance(value, list) else [value]:
            if not isinstance(each, str):
                raise ContextError(f"@type must be a string, not {each!r}")
            term = context.terms.get(each)
            if term is not None and term.context is not None:
                raise UnsupportedContext(f"type-scoped context of {each!r}")
            _add(found, context.iri(each, vocab=True))
    elif keyword in ("@graph", "@included"):
        _value(context, None, value, found)
    elif keyword in ("@list", "@set"):
        raise UnsupportedContext(f"{keyword} in a node object")
    elif keyword in ("@reverse", "@nest"):
        raise UnsupportedContext(f"{keyword} in a document")
    elif keyword in ("@index", "@language") and isinstance(value, str):
        found.append(value)


def _value(context: Context, term: Term | None, value: Any, found: list[str]) -> None:
    type_ = term.type if term is not None else None
    if type_ == "@json":
        found.extend(_strings(value))
    elif isinstance(value, str):
        if type_ == "@id":
            _add(found, context.iri(value, vocab=False))
        elif type_ == "@vocab":
            _add(found, context.iri(value, vocab=True))
        else:
            found.append(value)
            if type_ is not None and type_ != "@none":
                found.append(type_)
    elif isinstance(value, list):
        for item in value:
            _value(context, term, item, found)
    elif isinstance(value, dict):
        if "@list" in value or "@set" in value:
            _value(context, term, value.get("@list", value.get("@set")), found)
        else:
            _node(context, value, found)
    elif value is not None and type_ is not None and type_ not in ("@id", "@vocab", "@none"):
        found.append(type_)


def _add(found: list[str], iri: str | None) -> None:
    if iri is not None:
        found.append(iri)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
