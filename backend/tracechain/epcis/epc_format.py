"""Events served with their identifiers in the form a reader asks for (the `GS1-EPC-Format` header
of the EPCIS 2.0 REST binding): GS1 Digital Link URIs, EPC URNs, or as captured.

The CBV 2.0 hash writes every GS1 key as its canonical Digital Link (`prehash.canonical_value`),
so a translated event hashes to the same id as the captured one: a reader can still check an event
it was served against its id on chain. That holds by construction here: a value is translated only
when GS1's normaliser reads the translation as the same key it reads the original as; anything
else (a key the normaliser does not know, a private URI) is served as captured.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import partial
from typing import Any, Final

from tracechain.epcis.gs1_normaliser import canonical_digital_link
from tracechain.epcis.identifiers import in_form


class EpcFormat(StrEnum):
    """The values of the `GS1-EPC-Format` header."""

    NO_PREFERENCE = "No_Preference"
    ALWAYS_GS1_DIGITAL_LINK = "Always_GS1_Digital_Link"
    ALWAYS_EPC_URN = "Always_EPC_URN"
    NEVER_TRANSLATES = "Never_Translates"


DEFAULT_EPC_FORMAT: Final = EpcFormat.ALWAYS_GS1_DIGITAL_LINK
"""What the binding says a server does when a reader sends no `GS1-EPC-Format`."""

_LISTS: Final = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITY_LISTS: Final = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_PLACES: Final = ("readPoint", "bizLocation")
_PARTIES: Final = (("sourceList", "source"), ("destinationList", "destination"))


def translates(epc_format: EpcFormat) -> bool:
    """Whether identifiers are rewritten at all in this format (else served as captured)."""
    return epc_format in (EpcFormat.ALWAYS_GS1_DIGITAL_LINK, EpcFormat.ALWAYS_EPC_URN)


def identifier_in(identifier: str, epc_format: EpcFormat) -> str:
    """One identifier in `epc_format`, or as written when translating could change what the CBV
    hash reads it as (see the module docstring)."""
    if not translates(epc_format):
        return identifier
    translated = in_form(identifier, as_urn=epc_format is EpcFormat.ALWAYS_EPC_URN)
    if translated == identifier:
        return identifier
    read_as = canonical_digital_link(identifier)
    return translated if read_as is not None and canonical_digital_link(translated) == read_as else identifier


def event_in(event: dict[str, Any], epc_format: EpcFormat) -> dict[str, Any]:
    """The event with the identifiers of things, places and parties in `epc_format`: epcList,
    parentID, childEPCs, inputs and outputs, every quantity list's epcClass, readPoint and
    bizLocation, sourceList and destinationList. Everything else as captured; a new dict, the
    event itself untouched."""
    if not translates(epc_format):
        return event

    def one(value: Any) -> Any:
        return identifier_in(value, epc_format) if isinstance(value, str) else value

    served = dict(event)
    if "parentID" in served:
        served["parentID"] = one(served["parentID"])
    for name in _LISTS:
        served[name] = _each(served, name, one)
    for name in _QUANTITY_LISTS:
        served[name] = _each(served, name, partial(_with, key="epcClass", change=one))
    for name in _PLACES:
        served[name] = _with(served.get(name), "id", one)
    for name, key in _PARTIES:
        served[name] = _each(served, name, partial(_with, key=key, change=one))
    return {name: value for name, value in served.items() if name in event}


def _each(event: dict[str, Any], name: str, change: Callable[[Any], Any]) -> Any:
    values = event.get(name)
    return [change(value) for value in values] if isinstance(values, list) else values


def _with(entry: Any, key: str, change: Callable[[Any], Any]) -> Any:
    return {**entry, key: change(entry[key])} if isinstance(entry, dict) and key in entry else entry
