"""The GS1 headers of the EPCIS 2.0 REST binding: the versions this service speaks (sent on every
EPCIS response, checked against what a request accepts), what `OPTIONS` advertises, and the
`GS1-EPC-Format` a reader asks its identifiers in."""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import Depends, Request, Response

from tracechain import __version__
from tracechain.api.problems import Problem
from tracechain.epcis.epc_format import DEFAULT_EPC_FORMAT, EpcFormat, translates
from tracechain.epcis.schema import TRACECHAIN_NS

EPCIS_VERSION: Final = "2.0.0"
CBV_VERSION: Final = "2.0.0"

_VERSION: Final = re.compile(r"\d{1,9}(\.\d{1,9}){0,3}")  # bounded: int() of 5,000 digits raises
_CBV_XML_FORMATS: Final = ("No_Preference", "Always_Web_URI", "Always_URN", "Never_Translates")


def version_headers() -> dict[str, str]:
    """What every EPCIS response carries: the versions it is written in."""
    return {"GS1-EPCIS-Version": EPCIS_VERSION, "GS1-CBV-Version": CBV_VERSION}


def discovery_headers(allow: str) -> dict[str, str]:
    """What `OPTIONS` answers on an EPCIS resource (the binding's 204DefaultDiscoveryResponse).

    `GS1-EPC-Format: No_Preference` announces that identifiers are accepted in any form and served
    in the form a reader asks for; `GS1-Extensions` names the one namespace tracechain adds terms
    from."""
    return {
        "Allow": allow,
        **version_headers(),
        "GS1-EPCIS-Min": EPCIS_VERSION,
        "GS1-EPCIS-Max": EPCIS_VERSION,
        "GS1-CBV-Min": CBV_VERSION,
        "GS1-CBV-Max": CBV_VERSION,
        "GS1-EPC-Format": EpcFormat.NO_PREFERENCE.value,
        "GS1-Vendor-Version": f"tracechain-{__version__}",
        "GS1-Extensions": f"tracechain={TRACECHAIN_NS}",
    }


def _invalid_header(name: str, reason: str) -> Problem:
    return Problem(400, "Invalid header", f"{name}: {reason}", parameters=[name])


def _version(name: str, value: str) -> tuple[int, ...]:
    text = value.strip()
    if not _VERSION.fullmatch(text):
        raise _invalid_header(name, f"{value!r} is not a version such as {EPCIS_VERSION}")
    numbers = tuple(int(part) for part in text.split("."))
    return numbers + (0,) * (3 - len(numbers))  # "2.0" is 2.0.0


def negotiate_versions(request: Request, response: Response) -> None:
    """Refuse (406) a request that accepts no version this service speaks, by `GS1-EPCIS-Version`
    or `GS1-CBV-Version` (the one it is written in) or their `-Min`/`-Max` (the range it accepts);
    and send the versions this service speaks on the response."""
    for kind, ours in (("EPCIS", EPCIS_VERSION), ("CBV", CBV_VERSION)):
        spoken = _version(f"GS1-{kind}-Version", ours)
        for suffix in ("Version", "Min", "Max"):
            name = f"GS1-{kind}-{suffix}"
            value = request.headers.get(name)
            if value is None:
                continue
            asked = _version(name, value)
            if {"Version": asked != spoken, "Min": asked > spoken, "Max": asked < spoken}[suffix]:
                raise Problem(
                    406,
                    "Version not supported",
                    f"{name}: {value} leaves out {kind} {ours}, the only version this service speaks",
                    type="epcisException:NotAcceptableException",
                    parameters=[name],
                )
    response.headers.update(version_headers())


Negotiated = Depends(negotiate_versions)
"""For `APIRouter(dependencies=[Negotiated])`: every EPCIS route checks and answers the versions."""


def epc_format(request: Request, response: Response) -> EpcFormat:
    """The form the reader asks identifiers in (`GS1-EPC-Format`; the binding's default when it
    sends none); the response says what it got: `Never_Translates` unless they were translated."""
    value = request.headers.get("GS1-EPC-Format")
    try:
        asked = DEFAULT_EPC_FORMAT if value is None else EpcFormat(value.strip())
    except ValueError:
        raise _invalid_header(
            "GS1-EPC-Format", f"{value!r} is not one of {', '.join(f.value for f in EpcFormat)}"
        ) from None
    cbv_format = request.headers.get("GS1-CBV-XML-Format")
    if cbv_format is not None and cbv_format.strip() not in _CBV_XML_FORMATS:
        # Only XML answers read it (JSON writes CBV values as bare words), but a wrong value is a
        # mistake the reader should hear about.
        raise _invalid_header(
            "GS1-CBV-XML-Format", f"{cbv_format!r} is not one of {', '.join(_CBV_XML_FORMATS)}"
        )
    response.headers["GS1-EPC-Format"] = (asked if translates(asked) else EpcFormat.NEVER_TRANSLATES).value
    return asked


EpcFormatDep = Annotated[EpcFormat, Depends(epc_format)]
