"""Turns revert data from any chain into the Python exception named after the contract's custom error.

`reverts.TraceRegistryNotCustodian` is a subclass of `ContractRevert`, built from the ABIs of the
shipped artifacts; an instance carries the error's arguments by name.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from hexbytes import HexBytes

from tracechain.chain.artifacts import all_artifacts
from tracechain.errors import ContractRevert, UnknownRevert

_ErrorSpec = tuple[type[ContractRevert], list[str], list[str]]  # class, argument names, ABI types


@cache
def _errors_by_selector() -> dict[bytes, _ErrorSpec]:
    specs: dict[bytes, _ErrorSpec] = {}
    for artifact in all_artifacts():
        for item in artifact.abi:
            if item["type"] != "error":
                continue
            types = [_abi_type(arg) for arg in item["inputs"]]
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            cls = type(item["name"], (ContractRevert,), {"error_name": item["name"], "__module__": __name__})
            specs[selector] = (cls, [arg["name"] for arg in item["inputs"]], types)
    return specs


def _abi_type(arg: dict[str, Any]) -> str:
    if arg["type"].startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in arg["components"])
        return f"({inner}){arg['type'][len('tuple') :]}"
    return str(arg["type"])


def error_class(name: str) -> type[ContractRevert]:
    for cls, _, _ in _errors_by_selector().values():
        if cls.error_name == name:
            return cls
    raise AttributeError(f"no contract declares a custom error named {name}")


def __getattr__(name: str) -> type[ContractRevert]:
    """`reverts.TraceRegistryNotCustodian` and friends, for `except` clauses and tests."""
    if name.startswith("_"):
        raise AttributeError(name)
    return error_class(name)


def decode_revert(data: bytes) -> ContractRevert | UnknownRevert:
    spec = _errors_by_selector().get(bytes(data[:4]))
    if spec is None:
        return UnknownRevert(HexBytes(data).to_0x_hex())
    cls, names, types = spec
    values = [
        to_checksum_address(value) if abi_type == "address" else value
        for abi_type, value in zip(types, abi_decode(types, bytes(data[4:])), strict=True)
    ]
    return cls(dict(zip(names, values, strict=True)))


_TESTER_REVERT = re.compile(r"execution reverted: (b(['\"]).*\2)$", re.DOTALL)


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data inside a web3 or eth-tester exception, or None if it carries none."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes(HexBytes(data))
    if isinstance(data, dict) and isinstance(data.get("data"), str):
        return bytes(HexBytes(data["data"]))
    # web3's EthereumTesterProvider passes eth-tester's revert bytes on as their repr() in a message.
    match = _TESTER_REVERT.search(str(exc.args[0]) if exc.args else "")
    if match:
        value = ast.literal_eval(match.group(1))
        if isinstance(value, bytes):
            return value
    return None
