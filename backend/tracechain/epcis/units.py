"""UN/ECE Recommendation 20 units, for comparing a measurement with a bound in another unit.

EPCIS 2.0 names a bound's unit in the query parameter (`GE_value_KEL`) and a reading carries its
own (`"uom": "CEL"`): the repository converts. Only units of the same quantity convert; a unit not
listed here compares only with itself, never by guess.
"""

from __future__ import annotations

from typing import Final

# code -> (quantity, factor, offset): value in the quantity's SI unit = value * factor + offset
_UNITS: Final[dict[str, tuple[str, float, float]]] = {
    "KEL": ("temperature", 1.0, 0.0),
    "CEL": ("temperature", 1.0, 273.15),
    "FAH": ("temperature", 5 / 9, 273.15 - 32 * 5 / 9),
    "KGM": ("mass", 1.0, 0.0),
    "GRM": ("mass", 1e-3, 0.0),
    "MGM": ("mass", 1e-6, 0.0),
    "TNE": ("mass", 1e3, 0.0),
    "LBR": ("mass", 0.45359237, 0.0),
    "ONZ": ("mass", 0.028349523125, 0.0),
    "MTR": ("length", 1.0, 0.0),
    "KMT": ("length", 1e3, 0.0),
    "CMT": ("length", 1e-2, 0.0),
    "MMT": ("length", 1e-3, 0.0),
    "INH": ("length", 0.0254, 0.0),
    "FOT": ("length", 0.3048, 0.0),
    "MTQ": ("volume", 1.0, 0.0),
    "LTR": ("volume", 1e-3, 0.0),
    "MLT": ("volume", 1e-6, 0.0),
    "SEC": ("time", 1.0, 0.0),
    "MIN": ("time", 60.0, 0.0),
    "HUR": ("time", 3600.0, 0.0),
    "DAY": ("time", 86400.0, 0.0),
    "PAL": ("pressure", 1.0, 0.0),
    "A97": ("pressure", 100.0, 0.0),
    "KPA": ("pressure", 1e3, 0.0),
    "MBR": ("pressure", 100.0, 0.0),
    "BAR": ("pressure", 1e5, 0.0),
    "P1": ("ratio", 0.01, 0.0),
    "C62": ("ratio", 1.0, 0.0),
    "MTS": ("speed", 1.0, 0.0),
    "KMH": ("speed", 1 / 3.6, 0.0),
}


def converted(value: float, unit: str | None, wanted: str, *, difference: bool = False) -> float | None:
    """`value` in `unit` expressed in `wanted`; None when the two units do not convert.

    A `difference` (a standard deviation, a change) converts by the factor alone: 2 °C apart is
    2 K apart, where 2 °C is 275.15 K."""
    if unit == wanted:
        return value
    source, target = _UNITS.get(unit or ""), _UNITS.get(wanted)
    if source is None or target is None or source[0] != target[0]:
        return None
    if difference:
        return value * source[1] / target[1]
    base = value * source[1] + source[2]
    return (base - target[2]) / target[1]
