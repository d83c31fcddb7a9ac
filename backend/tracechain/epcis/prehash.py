"""The CBV 2.0 pre-hash string of an EPCIS 2.0 JSON event: what the event hash id is the SHA-256 of.

A port of GS1's reference hash generator (`epcis-event-hash-generator` 1.9.3: `json_to_py`,
`json_xml_model_mismatch_correction` and `hash_generator`). Its output is the specification
tracechain is held to, so this follows it step by step rather than the algorithm's prose, and
keeps its data model: every JSON value becomes a triple `(name, text, children)` shaped like the
event's XML form, children sorted, and the pre-hash is read off the triples in the fixed order of
:data:`PROPERTY_ORDER`, the rest appended sorted.

Habits of the reference that this keeps, because they decide ids:

- Before anything else, a string that ends one CBV or GS1 vocabulary IRI the document expands to
  (`shipping` of `.../BizStep-shipping`) is replaced by that IRI, wherever it stands, when
  exactly one such IRI fits (:func:`tracechain.epcis.vocabulary.vocabulary_iris` finds them).
- Only the prefixes of an `@context` given as a list are used to write `prefix:name` keys and
  values as `{namespace}name`; a context object alone declares none.
- Only user extensions whose namespace ends with `/` are hashed inside the element that holds
  them (readPoint, sensorElement ...); others are hashed at the end of the event.
- A bizTransaction, source or destination is hashed as its first two keys in the order the JSON
  object lists them (`type` first, normally), and such lists are not sorted inside.
- Times are normalised to UTC milliseconds only in eventTime and sensor times; extension and
  ILMD values are hashed as written (numbers and GS1 keys canonicalised).

Where the reference crashes, this decides (see :func:`_pair`, :func:`namespaces_of`) and says so.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final, TypeAlias

import dateutil.parser

from tracechain.epcis.gs1_normaliser import canonical_digital_link

Node: TypeAlias = tuple[Any, str, list[Any]]
"""(name, text, children); a bizTransaction, source or destination is a pair of nodes instead."""
Order: TypeAlias = list[tuple[Any, Any]]

_QUANTITY: Final[Order] = [("epcClass", None), ("quantity", None), ("uom", None)]
_EPCS: Final[Order] = [("epc", None)]
PROPERTY_ORDER: Final[Order] = [
    ("eventTime", None),
    ("eventTimeZoneOffset", None),
    ("certificationInfo", None),
    ("parentID", None),
    ("epcList", _EPCS),
    ("inputEPCList", _EPCS),
    ("childEPCs", _EPCS),
    ("quantityList", [("quantityElement", _QUANTITY)]),
    ("childQuantityList", [("quantityElement", _QUANTITY)]),
    ("inputQuantityList", [("quantityElement", _QUANTITY)]),
    ("outputEPCList", _EPCS),
    ("outputQuantityList", [("quantityElement", _QUANTITY)]),
    ("action", None),
    ("transformationID", None),
    ("bizStep", None),
    ("disposition", None),
    ("persistentDisposition", [("set", None), ("unset", None)]),
    ("readPoint", [("id", None)]),
    ("bizLocation", [("id", None)]),
    # These three never match (the reference's order entry is a pair of pairs): their lists are
    # hashed with the fields outside the order, as the reference does.
    ("bizTransactionList", [(("type", None), ("bizTransaction", None))]),
    ("sourceList", [(("type", None), ("source", None))]),
    ("destinationList", [(("type", None), ("destination", None))]),
    (
        "sensorElementList",
        [
            (
                "sensorElement",
                [
                    (
                        "sensorMetadata",
                        [
                            (name, None)
                            for name in (
                                "time",
                                "startTime",
                                "endTime",
                                "deviceID",
                                "deviceMetadata",
                                "rawData",
                                "dataProcessingMethod",
                                "bizRules",
                            )
                        ],
                    ),
                    (
                        "sensorReport",
                        [
                            (name, None)
                            for name in (
                                "type",
                                "exception",
                                "deviceID",
                                "deviceMetadata",
                                "rawData",
                                "dataProcessingMethod",
                                "time",
                                "microorganism",
                                "chemicalSubstance",
                                "value",
                                "component",
                                "stringValue",
                                "booleanValue",
                                "hexBinaryValue",
                                "uriValue",
                                "minValue",
                                "maxValue",
                                "meanValue",
                                "sDev",
                                "percRank",
                                "percValue",
                                "uom",
                                "coordinateReferenceSystem",
                            )
                        ],
                    ),
                ],
            )
        ],
    ),
]
"""The order the fields of an event are hashed in, nested fields with their own order."""

_IGNORED_KEYS: Final = frozenset({"#text", "rdfs:comment", "comment"})
_UNSORTED_KEYS: Final = ("bizTransaction", "source", "destination")
_PAIR_LISTS: Final = frozenset({"sourceList", "destinationList", "bizTransactionList"})
_NOT_HASHED: Final = frozenset({"recordTime", "eventID", "type", "errorDeclaration"})
_QUANTITY_ELEMENTS: Final = frozenset({"inputQuantity", "outputQuantity", "childQuantity"})
_OLD_VOCABULARY: Final = (
    ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"),
    ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
    ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
    ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
    ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
)
_ISO_TIME: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")


# ---------------------------------------------------------------- JSON to triples


class Reader:
    """Turns one document's JSON into triples, as the reference's `json_to_py` does.

    An `@xmlns` key adds a prefix for what the reader reads after it, as the reference's prefix
    table does; tracechain reads each event with a reader of its own (see
    :func:`tracechain.epcis.event_hash.pre_hash_strings`).
    """

    def __init__(self, namespaces: dict[str, str], replace: Callable[[str], str]) -> None:
        self.namespaces = dict(namespaces)  # prefix -> "{namespace}"
        self.replace = replace
        self._keys: dict[str, str] = {}

    def node(self, value: Any) -> Node:
        if isinstance(value, str):
            value = self.replace(value)
            if ":" in value:
                value = self._value(value)
            return "", value, []
        if isinstance(value, list):
            children = [self.node(child) for child in value]
            if not any(isinstance(item, str) and self.replace(item) in _UNSORTED_KEYS for item in value):
                children.sort()
            return "", "", children
        if isinstance(value, dict):
            return self._object(value)
        return "", str(value), []

    def _object(self, value: Mapping[str, Any]) -> Node:
        name = self._replaced(value["type"]) if "type" in value else ""
        text = self._replaced(value["#text"]) if "#text" in value else ""
        children: list[Any] = []
        for key, child in value.items():
            if key in _IGNORED_KEYS:
                continue
            if key.startswith("@xmlns"):
                self.namespaces[key[7:]] = "{" + self._replaced(child) + "}"
                self._keys.clear()
                name = self._key(name)
                continue
            converted = self.node(child)
            key = self._key(key)
            if isinstance(child, list):
                children.extend((key, element[1], element[2]) for element in converted[2])
            else:
                children.append((key, converted[1], converted[2]))
        if not any(key in value for key in _UNSORTED_KEYS):
            children.sort()
        return name, text, children

    def _replaced(self, value: Any) -> Any:
        """A value as the reference's bare string replacement leaves it in the document."""
        if isinstance(value, str):
            return self.replace(value)
        if isinstance(value, list):
            return [self._replaced(item) for item in value]
        if isinstance(value, dict):
            return {key: self._replaced(item) for key, item in value.items()}
        return value

    def _key(self, key: Any) -> Any:
        if not isinstance(key, str):
            return key
        written = self._keys.get(key)
        if written is None:
            prefix, colon, rest = key.partition(":")
            written = self.namespaces[prefix] + rest if colon and prefix in self.namespaces else key
            self._keys[key] = written
        return written

    def _value(self, value: str) -> str:
        prefix, colon, rest = value.partition(":")
        if colon and prefix in self.namespaces:
            return self.namespaces[prefix].replace("{", "").replace("}", "") + rest
        return value


def namespaces_of(context: Any, replace: Callable[[str], str]) -> dict[str, str]:
    """The prefixes the reference writes as `{namespace}`: those of a list-form `@context`.

    The reference takes every key of every object in the list and crashes on a term defined by
    an object (`"ex": {"@id": ...}`). Here such a term declares its `@id` as a namespace, as the
    same term written as a string would; a definition without a string `@id` (`"ex:n": {"@type":
    "@id"}` types a key, declares no prefix) and keywords' values that are not strings declare
    nothing: the reference could not have used them for a prefix either.
    """
    namespaces: dict[str, str] = {}
    if not isinstance(context, list):
        return namespaces
    for item in context:
        if isinstance(item, str):
            namespaces[item] = "{" + replace(item) + "}"
        elif isinstance(item, dict):
            for key, definition in item.items():
                if isinstance(definition, dict):
                    definition = definition.get("@id")
                if isinstance(definition, str):
                    namespaces[key] = "{" + replace(definition) + "}"
    return namespaces


# ---------------------------------------------------------------- JSON shape to XML shape


def _pair(element: Node) -> tuple[Node, ...]:
    """A bizTransaction, source or destination as the reference hashes it: its first two keys.

    The reference crashes on one with a single key (a bizTransaction without a type, as EPCIS
    allows). Here it is hashed as the one key it has, which is the CBV's rule - a missing type
    adds nothing to the pre-hash - and what the reference's output is with the type left out.
    """
    return tuple(element[2][:2])


def _corrected(node: Node) -> Node:
    """The reference's `deep_structure_correction`: JSON lists renamed and regrouped as XML has them."""
    name, text, children = node
    if not children:
        if name in ("inputEPC", "outputEPC"):
            return "epc", text, []
        return ("quantityElement", text, []) if name in _QUANTITY_ELEMENTS else node
    lists: dict[str, list[Node]] = {}
    kept: list[Any] = []
    for child in children:
        child_name = child[0]
        if isinstance(child_name, str) and child_name.endswith("List"):
            lists.setdefault(child_name, []).append((child_name[:-4], child[1], child[2]))
        else:
            kept.append(child)
    for list_name, elements in lists.items():
        if list_name in _PAIR_LISTS:
            kept.append((list_name, "", [_pair(element) for element in elements]))
        else:
            kept.append((list_name, "", elements))
    child_epcs: list[Node] = [("epc", child[1], []) for child in kept if child[0] == "childEPCs"]
    if child_epcs:
        kept = [child for child in kept if child[0] != "childEPCs"]
        kept.append(("childEPCs", "", child_epcs))
    corrected = [child if child[0] in _PAIR_LISTS else _corrected(child) for child in kept]
    if name in ("inputEPC", "outputEPC"):
        return "epc", text, corrected
    if name in _QUANTITY_ELEMENTS or (name == "quantity" and corrected):
        return "quantityElement", text, corrected
    return name, text, corrected


# ---------------------------------------------------------------- triples to the pre-hash string


def _time(text: str) -> str:
    """A time at millisecond precision in UTC, `Z`-suffixed, as the reference writes it."""
    moment: datetime.datetime | None = None
    if _ISO_TIME.fullmatch(text):
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            moment = None
    if moment is None:
        try:
            moment = dateutil.parser.parse(text)
        except ValueError:
            return text
    # A time without offset is read in the machine's time zone, as the reference reads it; the
    # schema requires an offset, so only events tracechain refuses anyway depend on it.
    moment = moment.astimezone(datetime.UTC)
    # Python's round() to even, as the reference: xx.0005 becomes xx.000, and a time within half a
    # millisecond of the next second raises ValueError (microsecond 1000000), as there.
    moment = moment.replace(microsecond=round(moment.microsecond, -3))
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def _numeric(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    try:
        integral = int(number)
    except ValueError:  # NaN; infinity raises OverflowError, and the reference fails the event
        return text
    return str(integral) if integral == number else str(number)


@lru_cache(maxsize=1 << 16)
def canonical_value(text: str) -> str:
    """A value as the hash writes it: CBV 1 URNs as web vocabulary, numbers without trailing
    zeros, GS1 keys as canonical Digital Links."""
    for old, new in _OLD_VOCABULARY:
        text = text.replace(old, new)
    text = _numeric(text)
    return canonical_digital_link(text) or text


@lru_cache(maxsize=1 << 14)
def _canonical_time(text: str) -> str:
    return _time(text)


def _child(child: Node, order: Order | None) -> str:
    grandchildren = _in_order(child[2], order) if order else ""
    text = ""
    if child[1]:
        text = child[1].strip()
        lowered = child[0].lower()
        if "time" in lowered and "offset" not in lowered:
            text = _canonical_time(text)
        else:
            text = canonical_value(text)
        if text:
            text = "=" + text
    if text or grandchildren:
        return child[0] + text + grandchildren
    return ""


def _user_extensions(children: list[Any]) -> list[Any]:
    """Extensions inside a nested element (namespace ending in `/`), taken out of `children`."""
    if len(children) <= 1:
        return []
    for child in children:
        name = child[0]
        if isinstance(name, str) and ("eventTime" in name or "action" in name):
            return []
    extensions = [
        child for child in children if isinstance(child[0], str) and "{" in child[0] and "/}" in child[0]
    ]
    for extension in extensions:
        children.remove(extension)
    return extensions


def _in_order(children: list[Any], order: Order) -> str:
    """The pre-hash of the ordered fields; each field hashed whole is taken out of `children`."""
    pre_hash = ""
    extensions = _user_extensions(children)
    # An order's names are strings (the pair entries never match a child, as in the reference).
    present = {child[0] for child in children if isinstance(child[0], str)}
    for name, sub_order in order:
        if name not in present:
            continue
        values = []
        for child in [child for child in children if child[0] == name]:
            text = _child(child, sub_order)
            if text:
                values.append(text)
            if not child[2]:
                children.remove(child)
        values.sort()
        joined = "".join(values)
        if joined:
            pre_hash += joined
    if extensions:
        pre_hash += _generic(extensions)
    return pre_hash


def _generic(children: list[Any]) -> str:
    """The pre-hash of fields outside the order: `name=value` and nested fields, sorted."""
    values = []
    for child in children:
        if len(child) != 3:  # a bizTransaction, source or destination pair
            values.append(_generic(list(child)))
            continue
        text = child[1].strip()
        if text:
            text = "=" + canonical_value(text)
        values.append(child[0] + text + _generic(child[2]))
    if len(children) > 1 and not any(child[0] in _UNSORTED_KEYS for child in children):
        values.sort()
    return "".join(values)


def pre_hash_string(event: Any, reader: Reader) -> str:
    """The pre-hash string of one event, read by its document's reader."""
    node = _corrected(reader.node(event))
    children = node[2]
    ordered = _in_order(children, PROPERTY_ORDER)
    rest = [child for child in children if child[0] not in _NOT_HASHED]
    # Concatenation, not an f-string: a `type` that is not a string fails, as in the reference.
    return "eventType=" + node[0] + ordered + (_generic(rest) if rest else "")
