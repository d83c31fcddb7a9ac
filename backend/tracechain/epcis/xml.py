"""EPCIS 2.0 XML: capture documents read into the JSON-LD form tracechain captures, and query
documents written back out, each checked against GS1's XSD (shipped in `data/xsd`).

The mapping is the one the EPCIS 2.0 standard's two bindings imply and GS1's converter
(openepcis) follows: an element's name is its JSON key; list elements (`epcList/epc`,
`quantityList/quantityElement`, `bizTransactionList/bizTransaction` ...) become arrays;
`bizTransaction`, `source` and `destination` carry their `type` attribute as a key; quantities
and sensor values become numbers; the `extension` and `baseExtension` wrappers of EPCIS 1.x
vanish, their contents joining their parent. Elements and attributes of any other namespace are
extensions: a key `prefix:name`, the prefix bound to the namespace in the document's `@context`.

The CBV 2.0 event hash of the JSON form is the one GS1's reference computes on the XML itself:
a namespace is bound to its URI as written (`http://ns.example.com/epcis` gives
`example:myField`, which the reference hashes as `{http://ns.example.com/epcis}myField` in
both forms). A prefix the EPCIS context protects (`cbvmda`, `gs1` ...) is kept where the XML
binds it to the context's own IRI, and renamed (`ns1`) where it binds it to another.

A big capture document is read from its file in two passes (`read_xml_outline`, then
`xml_event_chunks`), holding a batch of events at a time, not the document, and gives the JSON
events `document_from_xml` gives it.

Parsing is safe: no DTD, no entities, no network, depth bounded by the parser (256 levels) and
by :data:`MAX_DEPTH`. Nothing here reads or writes anything but its arguments.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import IO, Any, Final

from lxml import etree

from tracechain.epcis.schema import TRACECHAIN_NS, TRACECHAIN_PREFIX, DocumentProblem
from tracechain.epcis.vocabulary import EPCIS_CONTEXT
from tracechain.errors import TracechainError

EPCIS_NS: Final = "urn:epcglobal:epcis:xsd:2"
EPCIS_QUERY_NS: Final = "urn:epcglobal:epcis-query:xsd:2"
_XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"
_XML_NS: Final = "http://www.w3.org/XML/1998/namespace"
_NOT_EXTENSIONS: Final = frozenset({EPCIS_NS, EPCIS_QUERY_NS, _XSI_NS, _XML_NS})

MAX_DEPTH: Final = 64
"""As deep as a JSON capture may nest (tracechain.api.limits.MAX_JSON_DEPTH)."""

MAX_NUMBER_DIGITS: Final = 1000
"""The longest number read: far past any quantity or reading, well within what Python turns into
text (4300 digits), which a longer integer would break later, at hashing or storing."""

EVENT_TYPES: Final = (
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
)
_BASE_FIELDS: Final = (
    "eventTime",
    "recordTime",
    "eventTimeZoneOffset",
    "eventID",
    "errorDeclaration",
    "certificationInfo",
)
_WHAT_HOW_WHERE: Final = ("bizStep", "disposition", "readPoint", "bizLocation")
_TAIL: Final = ("sourceList", "destinationList", "sensorElementList", "persistentDisposition")
_EVENT_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    # The order of each event type's elements in the XSD; extensions follow them.
    "ObjectEvent": (
        *_BASE_FIELDS, "epcList", "action", *_WHAT_HOW_WHERE, "bizTransactionList", "quantityList",
        *_TAIL, "ilmd",
    ),
    "AggregationEvent": (
        *_BASE_FIELDS, "parentID", "childEPCs", "action", *_WHAT_HOW_WHERE, "bizTransactionList",
        "childQuantityList", *_TAIL,
    ),
    "TransactionEvent": (
        *_BASE_FIELDS, "bizTransactionList", "parentID", "epcList", "action", *_WHAT_HOW_WHERE,
        "quantityList", *_TAIL,
    ),
    "TransformationEvent": (
        *_BASE_FIELDS, "inputEPCList", "inputQuantityList", "outputEPCList", "outputQuantityList",
        "transformationID", *_WHAT_HOW_WHERE, "bizTransactionList", *_TAIL, "ilmd",
    ),
    "AssociationEvent": (
        *_BASE_FIELDS, "parentID", "childEPCs", "childQuantityList", "action", *_WHAT_HOW_WHERE,
        "bizTransactionList", *_TAIL,
    ),
}  # fmt: skip
_EPC_LISTS: Final = frozenset({"epcList", "childEPCs", "inputEPCList", "outputEPCList"})
_QUANTITY_LISTS: Final = frozenset(
    {"quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"}
)
_TYPED_LISTS: Final = {
    "bizTransactionList": "bizTransaction",
    "sourceList": "source",
    "destinationList": "destination",
}
_LOCATIONS: Final = frozenset({"readPoint", "bizLocation"})
_WRAPPERS: Final = frozenset({"extension", "baseExtension"})
_SENSOR_NUMBERS: Final = frozenset(
    {"value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"}
)
_CBV_URNS: Final = {  # where a bare CBV word stands in JSON, its EPCglobal URN prefix in XML
    "bizStep": "urn:epcglobal:cbv:bizstep:",
    "disposition": "urn:epcglobal:cbv:disp:",
    "bizTransaction": "urn:epcglobal:cbv:btt:",
    "source": "urn:epcglobal:cbv:sdt:",
    "destination": "urn:epcglobal:cbv:sdt:",
    "reason": "urn:epcglobal:cbv:er:",
}
_CBV_WEB: Final = {
    "bizStep": "https://ref.gs1.org/cbv/BizStep-",
    "disposition": "https://ref.gs1.org/cbv/Disp-",
    "bizTransaction": "https://ref.gs1.org/cbv/BTT-",
    "source": "https://ref.gs1.org/cbv/SDT-",
    "destination": "https://ref.gs1.org/cbv/SDT-",
    "reason": "https://ref.gs1.org/cbv/ER-",
}
_GS1_VOCABULARY: Final = ("gs1:", "https://gs1.org/voc/")
_SENSOR_TERMS: Final = frozenset({"type", "exception"})
"""Sensor report attributes whose GS1 terms JSON names bare (`Temperature`, `ALARM_CONDITION`)."""
_NOT_XML_CHARACTERS: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NCNAME: Final = re.compile(r"^[A-Za-z_][\w.-]*$")
_IRI_KEY: Final = re.compile(r"^([A-Za-z][\w+.-]*:.*[/#:])([A-Za-z_][\w.-]*)$")
_PREFIXED: Final = re.compile(r"^([A-Za-z_][\w.-]*):([A-Za-z_][\w.-]*)$")
_VALUE_PREFIX: Final = re.compile(r"^\s*([A-Za-z][\w.+-]*):")


class InvalidXml(TracechainError):
    """An XML document that is not well-formed EPCIS 2.0 by GS1's XSD, or that has no JSON form."""

    def __init__(self, problems: list[DocumentProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


# ---------------------------------------------------------------- parsing and the XSD


def _xsd_path(name: str) -> str:
    return str(resources.files("tracechain.epcis").joinpath("data", "xsd", name))


_per_thread = threading.local()
"""lxml's schema validators keep their error log in the object: each thread compiles its own."""


def _schema(name: str) -> etree.XMLSchema:
    schemas: dict[str, etree.XMLSchema] = _per_thread.__dict__.setdefault("schemas", {})
    if name not in schemas:
        schemas[name] = etree.XMLSchema(etree.parse(_xsd_path(name), _parser()))
    return schemas[name]


CAPTURE_XSD: Final = "EPCglobal-epcis-2_0.xsd"
QUERY_XSD: Final = "EPCglobal-epcis-query-2_0.xsd"


_SAFE_PARSING: Final[dict[str, bool]] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}
"""How every EPCIS XML is parsed, whole (`_parser`) or streamed (`_streamed_elements`): no
entities, DTD or network, and lxml's limits on huge documents kept."""


def _parser() -> etree.XMLParser:
    # A parser per call: lxml's parser objects keep state and must not be shared between threads.
    return etree.XMLParser(**_SAFE_PARSING)


def parse(body: bytes, xsd: str = CAPTURE_XSD) -> etree._Element:
    """The document's root element, once the text is well-formed XML without a DTD and valid by
    GS1's XSD; otherwise InvalidXml naming each problem's line."""
    try:
        tree = etree.fromstring(body, _parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or exc.position[0]
        raise InvalidXml([DocumentProblem(f"line {line}", f"not well-formed XML: {exc.msg}")]) from exc
    if tree.docinfo.doctype:
        line = body[: body.find(b"<!DOCTYPE")].count(b"\n") + 1
        raise InvalidXml(
            [DocumentProblem(f"line {line}", "a DOCTYPE is not allowed (EPCIS documents declare no DTD)")]
        )
    schema = _schema(xsd)
    if not schema.validate(tree):
        problems = [
            DocumentProblem(f"line {error.line}", _readable(error.message)) for error in schema.error_log
        ]
        raise InvalidXml(problems or [DocumentProblem("document", "not valid by the EPCIS XSD")])
    return tree.getroot()


def schema_problems(body: bytes, xsd: str = QUERY_XSD) -> list[DocumentProblem]:
    """Every problem of an XML document by GS1's XSD (the query schema unless named); none if valid."""
    try:
        parse(body, xsd)
    except InvalidXml as exc:
        return exc.problems
    return []


def _readable(message: str) -> str:
    # lxml names elements "{ns}local"; unqualified EPCIS elements appear bare already.
    return re.sub(r"\{urn:epcglobal:epcis(-query)?:xsd:2\}", "", message)


# ---------------------------------------------------------------- XML -> JSON


def document_from_xml(body: bytes) -> dict[str, Any]:
    """An EPCIS 2.0 XML capture document (`epcis:EPCISDocument`) in its JSON-LD form.

    Its EPCISHeader (a standard business document header, master data) is left out: tracechain
    captures events only, and the JSON binding's header has no place for the SBDH."""
    root = _root(body, CAPTURE_XSD, EPCIS_NS, "EPCISDocument")
    reader = _Reader(_value_prefixes(root))
    events = _events(reader, root.find("EPCISBody/EventList"))
    return {
        "@context": [EPCIS_CONTEXT, *([reader.prefixes] if reader.prefixes else [])],
        "type": "EPCISDocument",
        "schemaVersion": root.get("schemaVersion"),
        "creationDate": root.get("creationDate"),
        "epcisBody": {"eventList": events},
    }


def query_document_from_xml(body: bytes) -> dict[str, Any]:
    """An EPCIS 2.0 XML query document with event results (`epcisq:EPCISQueryDocument`) in its
    JSON-LD form: what a client of `GET /events` with `Accept: application/xml` reads back."""
    root = _root(body, QUERY_XSD, EPCIS_QUERY_NS, "EPCISQueryDocument")
    results = root.find(f"EPCISBody/{{{EPCIS_QUERY_NS}}}QueryResults")
    if results is None:
        raise InvalidXml([DocumentProblem(f"line {root.sourceline}", "no QueryResults in EPCISBody")])
    reader = _Reader(_value_prefixes(root))
    events = _events(reader, results.find("resultsBody/EventList"))
    query_results: dict[str, Any] = {"queryName": _text(results.find("queryName"))}
    if results.find("subscriptionID") is not None:
        query_results["subscriptionID"] = _text(results.find("subscriptionID"))
    return {
        "@context": [EPCIS_CONTEXT, *([reader.prefixes] if reader.prefixes else [])],
        "type": "EPCISQueryDocument",
        "schemaVersion": root.get("schemaVersion"),
        "creationDate": root.get("creationDate"),
        "epcisBody": {"queryResults": {**query_results, "resultsBody": {"eventList": events}}},
    }


def _root(body: bytes, xsd: str, namespace: str, name: str) -> etree._Element:
    root = parse(body, xsd)
    if etree.QName(root).localname != name or etree.QName(root).namespace != namespace:
        raise InvalidXml(
            [DocumentProblem(f"line {root.sourceline}", f"the root must be {name} of namespace {namespace}")]
        )
    return root


def _events(reader: _Reader, event_list: etree._Element | None) -> list[dict[str, Any]]:
    return [
        _event(reader, element)
        for element in (event_list if event_list is not None else ())
        if isinstance(element.tag, str)
    ]


def _event(reader: _Reader, element: etree._Element) -> dict[str, Any]:
    """One element of an EventList in its JSON form."""
    kind = etree.QName(element).localname
    if kind not in _EVENT_FIELDS or etree.QName(element).namespace is not None:
        raise InvalidXml(
            [
                DocumentProblem(
                    f"line {element.sourceline}", f"{kind}: not an EPCIS 2.0 event type tracechain reads"
                )
            ]
        )
    return reader.event(element, kind)


def _value_prefixes(root: etree._Element) -> frozenset[str]:
    """The schemes or prefixes the document's values start with (`example:someSensorProperty`).

    In XML such a value is a URI as written; bound in the JSON-LD context, its prefix would turn
    it into another IRI (and another hash), so extension namespaces are given other prefixes."""
    found: set[str] = set()
    for element in root.iter():
        _note_value_prefixes(element, found)
    return frozenset(found)


def _note_value_prefixes(element: etree._Element, found: set[str]) -> None:
    if not isinstance(element.tag, str) or etree.QName(element).namespace == TRACECHAIN_NS:
        return
    for value in (element.text or "", *element.attrib.values()):
        if match := _VALUE_PREFIX.match(value):
            found.add(match.group(1))


def _bare(field: str, value: str) -> str:
    """A CBV value as the JSON binding names it: the bare word of its URN or web URI."""
    for prefix in (_CBV_URNS[field], _CBV_WEB[field]):
        if value.startswith(prefix):
            return value.removeprefix(prefix)
    return value


def _elements(element: etree._Element) -> Iterator[etree._Element]:
    """The element's children, the EPCIS 1.x `extension` wrappers opened."""
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments, entities
        if child.tag in _WRAPPERS:
            yield from _elements(child)
        else:
            yield child


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


@cache
def _protected_terms() -> dict[str, str]:
    """The terms the EPCIS 2.0 context defines as prefixes (it protects all of its terms)."""
    text = resources.files("tracechain.epcis").joinpath("data", "epcis-context.jsonld").read_text("utf-8")
    context = json.loads(text)["@context"]
    return {term: iri if isinstance(iri, str) else "" for term, iri in context.items()} | {
        term: "" for term in context if isinstance(context[term], dict)
    }


class _Reader:
    """Reads events, binding each extension namespace to one prefix for the whole document."""

    def __init__(self, avoided: frozenset[str]) -> None:
        self.prefixes: dict[str, str] = {}  # prefix -> namespace URI, for the inline @context
        self._avoided = avoided
        self._by_uri: dict[str, str] = {}

    def key(self, name: etree.QName | str, prefix: str | None) -> str:
        qname = etree.QName(name)
        if qname.namespace is None:
            return qname.localname
        return f"{self._prefix(qname.namespace, prefix)}:{qname.localname}"

    def _prefix(self, uri: str, wanted: str | None) -> str:
        if uri in self._by_uri:
            return self._by_uri[uri]
        protected = _protected_terms()
        context_prefix = next((term for term, iri in protected.items() if iri == uri), None)
        if context_prefix is not None:
            self._by_uri[uri] = context_prefix  # the EPCIS context binds it already
            return context_prefix
        if uri == TRACECHAIN_NS:  # what tracechain serves reads back as it is served
            self.prefixes[TRACECHAIN_PREFIX] = uri
            self._by_uri[uri] = TRACECHAIN_PREFIX
            return TRACECHAIN_PREFIX
        prefix = wanted if wanted and _PREFIXED.match(f"{wanted}:x") else None
        # tracechain's prefix names its own namespace only: capture refuses any other under it.
        taken = {*self.prefixes, *protected, *self._avoided, TRACECHAIN_PREFIX}
        if prefix is None or prefix in taken:
            number = 1
            while f"ns{number}" in taken:
                number += 1
            prefix = f"ns{number}"
        self.prefixes[prefix] = uri
        self._by_uri[uri] = prefix
        return prefix

    def _extension_key(self, element: etree._Element) -> str | None:
        """The JSON key of an element of another namespace, or None for an EPCIS one."""
        namespace = etree.QName(element).namespace
        if namespace is None or namespace in _NOT_EXTENSIONS:
            return None
        return self.key(element.tag, element.prefix)

    def event(self, element: etree._Element, kind: str) -> dict[str, Any]:
        event: dict[str, Any] = {"type": kind}
        extensions: dict[str, Any] = {}
        for child in _elements(element):
            key = self._extension_key(child)
            if key is not None:
                _add(extensions, key, self.extension(child, 1))
                continue
            name = etree.QName(child).localname
            event[name] = self._field(name, child)
        return {**event, **extensions}

    def _field(self, name: str, element: etree._Element) -> Any:
        if name in _EPC_LISTS:
            return [_text(epc) for epc in element if isinstance(epc.tag, str)]
        if name in _QUANTITY_LISTS:
            return [self._quantity(item) for item in element if isinstance(item.tag, str)]
        if name in _TYPED_LISTS:
            return [self._typed(item) for item in element if isinstance(item.tag, str)]
        if name in _LOCATIONS or name == "ilmd":
            return self._with_extensions(element)
        if name == "errorDeclaration":
            return self._error_declaration(element)
        if name == "persistentDisposition":
            found: dict[str, list[str]] = {}
            for item in _elements(element):
                found.setdefault(etree.QName(item).localname, []).append(_bare("disposition", _text(item)))
            return found
        if name == "sensorElementList":
            return [self._sensor_element(item) for item in _elements(element)]
        if name in _CBV_URNS:
            return _bare(name, _text(element))
        return _text(element)

    def _quantity(self, element: etree._Element) -> dict[str, Any]:
        quantity: dict[str, Any] = {}
        for child in _elements(element):
            name = etree.QName(child).localname
            if name == "quantity":
                if child.get(f"{{{_XSI_NS}}}nil") not in ("true", "1"):
                    quantity["quantity"] = _number(child, _text(child))
            else:
                quantity[name] = _text(child)
        return quantity

    def _typed(self, element: etree._Element) -> dict[str, Any]:
        typed: dict[str, Any] = {}
        name = etree.QName(element).localname
        if element.get("type") is not None:
            typed["type"] = _bare(name, element.get("type", "").strip())
        typed[name] = _text(element)
        return typed

    def _with_extensions(self, element: etree._Element) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for child in _elements(element):
            key = self._extension_key(child)
            if key is None:
                found[etree.QName(child).localname] = _text(child)
            else:
                _add(found, key, self.extension(child, 1))
        return found

    def _error_declaration(self, element: etree._Element) -> dict[str, Any]:
        declaration: dict[str, Any] = {}
        for child in _elements(element):
            key = self._extension_key(child)
            name = etree.QName(child).localname
            if key is not None:
                _add(declaration, key, self.extension(child, 1))
            elif name == "correctiveEventIDs":
                declaration[name] = [_text(item) for item in child if isinstance(item.tag, str)]
            elif name == "reason":
                declaration[name] = _bare(name, _text(child))
            else:
                declaration[name] = _text(child)
        return declaration

    def _sensor_element(self, element: etree._Element) -> dict[str, Any]:
        sensor: dict[str, Any] = {}
        for child in _elements(element):
            key = self._extension_key(child)
            name = etree.QName(child).localname
            if key is not None:
                _add(sensor, key, self.extension(child, 1))
            elif name == "sensorReport":
                sensor.setdefault("sensorReport", []).append(self._sensor_attributes(child))
            else:
                sensor[name] = self._sensor_attributes(child)
        return sensor

    def _sensor_attributes(self, element: etree._Element) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, value in element.attrib.items():
            qname = etree.QName(name)
            if qname.namespace in _NOT_EXTENSIONS:
                continue
            if qname.namespace is not None:
                found[self.key(name, _prefix_of(element, qname.namespace))] = value
            elif name in _SENSOR_NUMBERS:
                found[name] = _number(element, value)
            elif name == "booleanValue":
                found[name] = value.strip() in ("true", "1")
            elif name in _SENSOR_TERMS and _gs1_term(value.strip()) in _bare_sensor_terms():
                found[name] = _gs1_term(value.strip())
            else:
                found[name] = value.strip()
        return found

    def extension(self, element: etree._Element, depth: int) -> Any:
        """An extension element's JSON value: its text, or an object of its attributes and
        children (repeated children as arrays, text beside them as `#text`)."""
        if depth > MAX_DEPTH:
            raise InvalidXml(
                [
                    DocumentProblem(
                        f"line {element.sourceline}", f"extensions nest deeper than {MAX_DEPTH} levels"
                    )
                ]
            )
        found: dict[str, Any] = {}
        for name, value in element.attrib.items():
            qname = etree.QName(name)
            if qname.namespace not in _NOT_EXTENSIONS or qname.namespace is None:
                found[self.key(name, _prefix_of(element, qname.namespace))] = value
        children = [child for child in element if isinstance(child.tag, str)]
        for child in children:
            _add(found, self.key(child.tag, child.prefix), self.extension(child, depth + 1))
        if not found:
            return _text(element)
        if not children and _text(element):
            found["#text"] = _text(element)
        return found


def _gs1_term(value: str) -> str:
    for prefix in _GS1_VOCABULARY:
        if value.startswith(prefix):
            return value.removeprefix(prefix)
    return value


@cache
def _bare_sensor_terms() -> frozenset[str]:
    """The GS1 terms the JSON schema lets a sensor report name bare; JSON keeps any other
    `gs1:` term as written (the schema refuses the full https://gs1.org/voc/ form)."""
    text = resources.files("tracechain.epcis").joinpath("data", "EPCIS-JSON-Schema.json").read_text("utf-8")
    definitions = json.loads(text)["definitions"]
    terms: set[str] = set()
    for name in ("measurementType", "sensorAlertType"):
        for choice in definitions[name]["anyOf"]:
            terms.update(choice.get("enum", ()))
    return frozenset(terms)


def _prefix_of(element: etree._Element, namespace: str | None) -> str | None:
    if namespace is None:
        return None
    return next((p for p, uri in element.nsmap.items() if uri == namespace and p), None)


def _add(found: dict[str, Any], key: str, value: Any) -> None:
    """A repeated key becomes an array of its values, in document order (an element's own value
    is never an array, so an array here is one this made)."""
    if key not in found:
        found[key] = value
    elif isinstance(found[key], list):
        found[key].append(value)
    else:
        found[key] = [found[key], value]


def _number(element: etree._Element, text: str) -> int | float:
    text = text.strip()
    digits = sum(char.isdigit() for char in text)
    if digits > MAX_NUMBER_DIGITS:
        raise InvalidXml(
            [
                DocumentProblem(
                    f"line {element.sourceline}",
                    f"a number of {digits} digits is longer than the {MAX_NUMBER_DIGITS} read here",
                )
            ]
        )
    try:
        number = Decimal(text)
    except ArithmeticError as exc:
        raise InvalidXml(
            [DocumentProblem(f"line {element.sourceline}", f"{text!r} is not a number")]
        ) from exc
    if not number.is_finite():
        raise InvalidXml([DocumentProblem(f"line {element.sourceline}", f"{text!r} has no JSON form")])
    if number == number.to_integral_value() and re.fullmatch(r"[+-]?\d+", text):
        return int(number)
    value = float(number)
    if not math.isfinite(value):
        raise InvalidXml([DocumentProblem(f"line {element.sourceline}", f"{text!r} is too large")])
    return value


# ---------------------------------------------------------------- big capture documents, streamed

VALIDATED_TOGETHER: Final = 200
"""Events checked against the XSD at a time while a big document is read: what that pass holds."""


@dataclass(frozen=True)
class XmlOutline:
    """A big XML capture document as far as a first pass over it knows it: its JSON form without
    its events (`shell`, the JSON-LD context final), how many events it holds, how deep its JSON
    form nests, and what its events' conversion needs to bind each extension namespace to the
    prefix the whole document's reading binds it to."""

    shell: dict[str, Any]
    event_count: int
    depth: int
    value_prefixes: frozenset[str]
    namespaces: tuple[tuple[str, str | None], ...]
    """Each extension namespace in the order the events first name it, and the prefix it had there."""

    def reader(self) -> _Reader:
        """A reader whose prefixes are those `document_from_xml` gives this document."""
        return _bound_reader(self.value_prefixes, self.namespaces)


def _bound_reader(value_prefixes: frozenset[str], namespaces: Iterable[tuple[str, str | None]]) -> _Reader:
    """A reader that bound `namespaces` in that order, as reading the events bound them."""
    reader = _Reader(value_prefixes)
    for uri, wanted in namespaces:
        reader._prefix(uri, wanted)
    return reader


class _Recorder(_Reader):
    """Converts events as `_Reader` does, but binds no prefix: it notes each namespace where it is
    first met, so that the bindings can be made once the whole document's values are known."""

    def __init__(self) -> None:
        super().__init__(frozenset())
        self.met: dict[str, str | None] = {}

    def _prefix(self, uri: str, wanted: str | None) -> str:
        if uri not in self.met:
            self.met[uri] = wanted
            self._by_uri[uri] = f"ns{len(self._by_uri)}"  # one per namespace, as a binding is
        return self._by_uri[uri]


def read_xml_outline(file: IO[bytes]) -> XmlOutline:
    """The first pass over a big XML capture document (InvalidXml, naming the line, for everything
    `document_from_xml` refuses). Reads the file from the start to the end, holding its events a
    batch at a time: the XSD checks the rest of the document (header, body, anything beside the
    event list) and each batch of events in an event list of its own, which is the same check,
    since an EventList is any sequence of its children and the XSD has no identity constraints.
    Each event is converted here too, and thrown away: that finds what has no JSON form, how deep
    the JSON form nests, and which extension namespaces the events name, in order."""
    recorder = _Recorder()
    schema = _schema(CAPTURE_XSD)
    value_prefixes: set[str] = set()
    unconvertible: InvalidXml | None = None
    batch: etree._Element | None = None
    count = deepest = 0
    root: etree._Element | None = None
    for element in _streamed_elements(file):
        if root is None:
            root = element  # the first element given is the root, at its start
            continue
        for node in element.iter():
            _note_value_prefixes(node, value_prefixes)
        count += 1
        if unconvertible is None:
            try:
                deepest = max(deepest, _json_depth(_event(recorder, element)))
            except InvalidXml as exc:  # reported once the XSD has passed the whole document, as whole
                unconvertible = exc
        if batch is None:
            batch = _event_list_alone()
        batch.append(element)  # moved out of the document: only the batch holds it now
        if len(batch) == VALIDATED_TOGETHER:
            _validate(schema, batch)
            batch = None
    if batch is not None:
        _validate(schema, batch)
    if root is None:
        raise InvalidXml([DocumentProblem("line 1", "not well-formed XML: the document is empty")])
    _validate(schema, root)  # what is left: everything but the events
    for node in root.iter():
        _note_value_prefixes(node, value_prefixes)
    if etree.QName(root).localname != "EPCISDocument" or etree.QName(root).namespace != EPCIS_NS:
        raise InvalidXml(
            [
                DocumentProblem(
                    f"line {root.sourceline}", f"the root must be EPCISDocument of namespace {EPCIS_NS}"
                )
            ]
        )
    if unconvertible is not None:
        raise unconvertible
    namespaces = tuple(recorder.met.items())
    prefixes = _bound_reader(frozenset(value_prefixes), namespaces).prefixes
    shell = {
        "@context": [EPCIS_CONTEXT, *([prefixes] if prefixes else [])],
        "type": "EPCISDocument",
        "schemaVersion": root.get("schemaVersion"),
        "creationDate": root.get("creationDate"),
        "epcisBody": {"eventList": []},
    }
    # The JSON form's depth: the context's object is at 3, the event list at 3, each event below it.
    return XmlOutline(shell, count, 3 + deepest, frozenset(value_prefixes), namespaces)


def xml_event_chunks(file: IO[bytes], outline: XmlOutline, size: int) -> Iterator[list[dict[str, Any]]]:
    """The second pass: the document's events in their JSON form, `size` at a time, in document
    order, each as `document_from_xml` gives it; only the chunk being handed out is held, and the
    element being read."""
    reader = outline.reader()
    chunk: list[dict[str, Any]] = []
    elements = _streamed_elements(file)
    next(elements, None)  # the root
    for element in elements:
        chunk.append(_event(reader, element))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _streamed_elements(file: IO[bytes]) -> Iterator[etree._Element]:
    """The root at its start, then each event (a child of the body's event list) at its end. An
    event is cleared once the caller is done with it, unless the caller moved it elsewhere, and so
    are the events before it: nothing else of the document is."""
    file.seek(0)
    parsed = etree.iterparse(file, events=("start", "end"), **_SAFE_PARSING)
    root: etree._Element | None = None
    event_list: etree._Element | None = None
    try:
        for action, element in parsed:
            if root is None:
                root = element
                if element.getroottree().docinfo.doctype:
                    line = _line_of(file, b"<!DOCTYPE")
                    raise InvalidXml(
                        [
                            DocumentProblem(
                                f"line {line}", "a DOCTYPE is not allowed (EPCIS documents declare no DTD)"
                            )
                        ]
                    )
                yield element
                continue
            parent = element.getparent()
            if action == "start":
                if (
                    event_list is None
                    and element.tag == "EventList"
                    and parent is not None
                    and parent.tag == "EPCISBody"
                    and parent.getparent() is root
                ):
                    event_list = element
                continue
            if event_list is None or parent is not event_list or not isinstance(element.tag, str):
                continue
            yield element
            if element.getparent() is parent:  # not moved elsewhere
                element.clear(keep_tail=False)
                while element.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or exc.position[0]
        raise InvalidXml([DocumentProblem(f"line {line}", f"not well-formed XML: {exc.msg}")]) from exc


def _event_list_alone() -> etree._Element:
    """An EventList in a document of its own that the XSD finds valid empty: events moved into it
    are checked as they would be in theirs (they keep their namespaces and their lines)."""
    root = etree.Element(
        f"{{{EPCIS_NS}}}EPCISDocument",
        {"schemaVersion": "2.0", "creationDate": "2000-01-01T00:00:00Z"},
        nsmap={"epcis": EPCIS_NS},
    )
    return etree.SubElement(etree.SubElement(root, "EPCISBody"), "EventList")


def _validate(schema: etree.XMLSchema, element: etree._Element) -> None:
    tree = element.getroottree()
    if not schema.validate(tree):
        problems = [
            DocumentProblem(f"line {error.line}", _readable(error.message)) for error in schema.error_log
        ]
        raise InvalidXml(problems or [DocumentProblem("document", "not valid by the EPCIS XSD")])


def _line_of(file: IO[bytes], marker: bytes) -> int:
    """The line of the file's first `marker`, read a block at a time."""
    file.seek(0)
    lines, carried = 1, b""
    while block := file.read(1 << 16):
        text = carried + block
        if (at := text.find(marker)) >= 0:
            return lines + text[:at].count(b"\n")
        keep = len(marker) - 1
        lines += text[: len(text) - keep].count(b"\n")
        carried = text[len(text) - keep :]
    return lines


def _json_depth(value: Any) -> int:
    """How deep a JSON value nests (an object or an array is a level), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


# ---------------------------------------------------------------- JSON -> XML


def query_document_xml(document: Mapping[str, Any], event_contexts: Sequence[Any] | None = None) -> bytes:
    """An EPCIS query document (JSON-LD, `type: EPCISQueryDocument`) as `epcisq:EPCISQueryDocument`.

    `event_contexts` are the `@context`s the listed events were captured with, one per event:
    they bind the prefixes of the events' extensions, which the query document's own context
    (tracechain's terms) does not."""
    root = etree.Element(
        f"{{{EPCIS_QUERY_NS}}}EPCISQueryDocument", nsmap={"epcisq": EPCIS_QUERY_NS, "epcis": EPCIS_NS}
    )
    _document_attributes(root, document)
    body = etree.SubElement(root, "EPCISBody")
    results = document.get("epcisBody", {}).get("queryResults", {})
    query_results = etree.SubElement(body, f"{{{EPCIS_QUERY_NS}}}QueryResults")
    etree.SubElement(query_results, "queryName").text = results.get("queryName", "SimpleEventQuery")
    if results.get("subscriptionID"):
        etree.SubElement(query_results, "subscriptionID").text = results["subscriptionID"]
    results_body = etree.SubElement(query_results, "resultsBody")
    events = results.get("resultsBody", {}).get("eventList", [])
    _write_events(etree.SubElement(results_body, "EventList"), document, events, event_contexts)
    return _serialised(root)


def capture_document_xml(document: Mapping[str, Any]) -> bytes:
    """An EPCIS capture document (JSON-LD, `type: EPCISDocument`) as `epcis:EPCISDocument`."""
    root = etree.Element(f"{{{EPCIS_NS}}}EPCISDocument", nsmap={"epcis": EPCIS_NS})
    _document_attributes(root, document)
    body = etree.SubElement(root, "EPCISBody")
    events = document.get("epcisBody", {}).get("eventList", [])
    _write_events(etree.SubElement(body, "EventList"), document, events, None)
    return _serialised(root)


def _serialised(root: etree._Element) -> bytes:
    text: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return text


def _document_attributes(root: etree._Element, document: Mapping[str, Any]) -> None:
    root.set("schemaVersion", _scalar(document.get("schemaVersion", "2.0")))
    root.set("creationDate", _scalar(document.get("creationDate", "")))


def _write_events(
    parent: etree._Element,
    document: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    event_contexts: Sequence[Any] | None,
) -> None:
    document_prefixes = _context_prefixes(document.get("@context"))
    for index, event in enumerate(events):
        captured = event_contexts[index] if event_contexts is not None else None
        # The event's own context, then the one it was captured with, then the document's.
        prefixes = {
            **_context_prefixes(captured),
            **_context_prefixes(event.get("@context")),
            **document_prefixes,
        }
        _Writer(prefixes).event(parent, event)


def _context_prefixes(context: Any) -> dict[str, str]:
    """The prefixes a JSON-LD context binds to a namespace: `{"example": "http://…"}`, and the
    EPCIS context's own (`cbvmda`, `gs1` …) for a context naming it."""
    found: dict[str, str] = {}
    for item in context if isinstance(context, list) else [context]:
        if isinstance(item, str) and item == EPCIS_CONTEXT:
            found.update({term: iri for term, iri in _protected_terms().items() if iri and ":" in iri})
        elif isinstance(item, Mapping):
            for term, definition in item.items():
                iri = definition.get("@id") if isinstance(definition, Mapping) else definition
                if isinstance(iri, str) and not term.startswith("@") and ":" not in term:
                    found[term] = iri
    return found


class _Writer:
    """Writes one event, declaring on it the namespace of each extension prefix it uses."""

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        self._prefixes = prefixes
        self._used: dict[str, str] = {}

    def event(self, parent: etree._Element, event: Mapping[str, Any]) -> None:
        kind = str(event.get("type"))
        if kind not in _EVENT_FIELDS:
            raise InvalidXml([DocumentProblem("event", f"{kind}: no EPCIS 2.0 XML event type")])
        element = etree.SubElement(parent, kind)
        for name in _EVENT_FIELDS[kind]:
            if name in event:
                self._field(element, name, event[name])
        for key, value in event.items():
            if key not in _EVENT_FIELDS[kind] and key != "type" and ":" in key:
                self._extension(element, key, value)
        # Each extension namespace declared once, on the event, under the prefix JSON gave it.
        etree.cleanup_namespaces(element, top_nsmap=self._used)

    def _tag(self, key: str) -> str | None:
        """The XML name of a JSON key: `acme:grade` in acme's namespace, a full IRI split at its
        last `/`, `#` or `:`, a plain name as it is; None for a key no XML name can carry."""
        if match := _PREFIXED.match(key):
            prefix, local = match.groups()
            namespace = self._prefixes.get(prefix, "")
            if not namespace or namespace in _NOT_EXTENSIONS or _NOT_XML_CHARACTERS.search(namespace):
                # Undeclared, or claiming EPCIS's own: an extension all the same, in a namespace
                # of its own, so the XSD's ##other still holds and it reads back as one.
                namespace = f"urn:tracechain:undeclared-prefix:{prefix}"
            self._used.setdefault(prefix, namespace)
            return f"{{{namespace}}}{local}"
        if (match := _IRI_KEY.match(key)) and match.group(1) not in _NOT_EXTENSIONS:
            return f"{{{match.group(1)}}}{match.group(2)}"
        return key if _NCNAME.match(key) else None

    def _field(self, parent: etree._Element, name: str, value: Any) -> None:
        if name in _EPC_LISTS:
            element = etree.SubElement(parent, name)
            for epc in value:
                etree.SubElement(element, "epc").text = _scalar(epc)
        elif name in _QUANTITY_LISTS:
            element = etree.SubElement(parent, name)
            for quantity in value:
                item = etree.SubElement(element, "quantityElement")
                etree.SubElement(item, "epcClass").text = _scalar(quantity["epcClass"])
                if "quantity" in quantity:
                    etree.SubElement(item, "quantity").text = _decimal(quantity["quantity"])
                if "uom" in quantity:
                    etree.SubElement(item, "uom").text = _scalar(quantity["uom"])
        elif name in _TYPED_LISTS:
            item_name = _TYPED_LISTS[name]
            element = etree.SubElement(parent, name)
            for typed in value:
                item = etree.SubElement(element, item_name)
                item.text = _scalar(typed[item_name])
                if "type" in typed:
                    item.set("type", _urn(item_name, _scalar(typed["type"])))
        elif name in _LOCATIONS or name == "ilmd":
            element = etree.SubElement(parent, name)
            if name in _LOCATIONS:
                etree.SubElement(element, "id").text = _scalar(value["id"])
            for key, item in value.items():
                if ":" in key:
                    self._extension(element, key, item)
        elif name == "errorDeclaration":
            self._error_declaration(etree.SubElement(parent, name), value)
        elif name == "persistentDisposition":
            element = etree.SubElement(parent, name)
            for which in ("unset", "set"):
                for disposition in value.get(which, []):
                    etree.SubElement(element, which).text = _urn("disposition", str(disposition))
        elif name == "sensorElementList":
            element = etree.SubElement(parent, name)
            for sensor in value:
                self._sensor_element(etree.SubElement(element, "sensorElement"), sensor)
        elif name == "certificationInfo":
            # XML has one; JSON may list several, of which XML keeps the first.
            first = value[0] if isinstance(value, list) and value else value
            etree.SubElement(parent, name).text = _scalar(first)
        elif name in _CBV_URNS:
            etree.SubElement(parent, name).text = _urn(name, str(value))
        else:
            etree.SubElement(parent, name).text = _scalar(value)

    def _error_declaration(self, element: etree._Element, declaration: Mapping[str, Any]) -> None:
        if "declarationTime" in declaration:
            etree.SubElement(element, "declarationTime").text = _scalar(declaration["declarationTime"])
        if "reason" in declaration:
            etree.SubElement(element, "reason").text = _urn("reason", str(declaration["reason"]))
        if "correctiveEventIDs" in declaration:
            ids = etree.SubElement(element, "correctiveEventIDs")
            for event_id in declaration["correctiveEventIDs"]:
                etree.SubElement(ids, "correctiveEventID").text = _scalar(event_id)
        for key, value in declaration.items():
            if ":" in key:
                self._extension(element, key, value)

    def _sensor_element(self, element: etree._Element, sensor: Mapping[str, Any]) -> None:
        if "sensorMetadata" in sensor:
            self._sensor_attributes(etree.SubElement(element, "sensorMetadata"), sensor["sensorMetadata"])
        for report in sensor.get("sensorReport", []):
            self._sensor_attributes(etree.SubElement(element, "sensorReport"), report)
        for key, value in sensor.items():
            if ":" in key:
                self._extension(element, key, value)

    def _sensor_attributes(self, element: etree._Element, attributes: Mapping[str, Any]) -> None:
        for name, value in attributes.items():
            text = _scalar(value)
            if name in _SENSOR_TERMS and _PREFIXED.match(text) is None and "/" not in text:
                text = f"gs1:{text}"  # a bare GS1 term (Temperature, ALARM_CONDITION)
            tag = self._tag(name)
            if tag is not None:
                element.set(tag, text)

    def _extension(self, parent: etree._Element, key: str, value: Any, depth: int = 1) -> None:
        if depth > MAX_DEPTH:
            raise InvalidXml([DocumentProblem(key, f"extensions nest deeper than {MAX_DEPTH} levels")])
        if isinstance(value, list):
            for item in value:
                self._extension(parent, key, item, depth)
            return
        tag = self._tag(key)
        if tag is None:
            return  # a key no XML name can carry (`1st`, `a b`): left out of the XML view
        element = etree.SubElement(parent, tag)
        if isinstance(value, Mapping):
            for name, item in value.items():
                if name == "#text":
                    element.text = _scalar(item)
                elif not name.startswith("@"):
                    self._extension(element, name, item, depth + 1)
        elif value is not None:
            element.text = _scalar(value)


def _urn(field: str, value: str) -> str:
    """A bare CBV word as the XML binding names it: its EPCglobal URN."""
    if ":" in value or "/" in value:
        return value
    return _CBV_URNS[field] + value


def _scalar(value: Any) -> str:
    """A JSON value as XML text. JSON strings may hold characters XML 1.0 has no way to write,
    not even as references (NUL, most C0 controls, lone surrogates): each becomes U+FFFD."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML_CHARACTERS.sub("\ufffd", str(value))


def _decimal(value: Any) -> str:
    """An xsd:decimal: no exponent (JSON's 1e-07 is 0.0000001)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return format(Decimal(repr(value)), "f")
