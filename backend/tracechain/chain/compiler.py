"""Compiles contracts/ into the artifacts the package ships, so serving never needs Node or solc.

The compiler is the official one pinned in package.json (the npm `solc` package, driven through
scripts/solc.cjs so it answers like the native binary), or a native `solc` named in settings. All
sources, OpenZeppelin's included, go into the standard-JSON input by content under stable names, so
the same sources give the same bytecode on any machine and with either compiler of the same version.

Test-only contracts (contracts/mocks/: hostile tokens) are not part of the package: they are left out
of the shipped artifacts and of the source list a proof bundle cites, and the tests compile them on
their own (`compile_contracts(test_contracts=True)`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError

from tracechain.chain.artifacts import ARTIFACTS_DIR
from tracechain.config import SOURCE_ROOT
from tracechain.errors import CompilerError

CONTRACTS_DIR = SOURCE_ROOT / "contracts"
NODE_MODULES = SOURCE_ROOT / "node_modules"
SOLC_SHIM = SOURCE_ROOT / "scripts" / "solc.cjs"
TEST_CONTRACTS = "mocks"
"""The folder of contracts/ that holds test-only contracts."""

# Cancun runs on every node tracechain supports (eth-tester's py-evm, anvil, geth, Besu).
EVM_VERSION = "cancun"
OPTIMIZER_RUNS = 10_000  # contracts are deployed once and called millions of times

_IMPORT = re.compile(r'^\s*import\s+(?:[^"\']*\s+from\s+)?["\']([^"\']+)["\']\s*;', re.MULTILINE)


@dataclass(frozen=True)
class CompiledContracts:
    """Artifact file name -> its JSON text, exactly as written to the package."""

    files: dict[str, str]


def collect_sources(contracts_dir: Path = CONTRACTS_DIR, test_contracts: bool = False) -> dict[str, str]:
    """Every source unit the contracts need, keyed by import name (`@openzeppelin/...`, `contracts/...`).

    The package's contracts by default; with `test_contracts`, those of contracts/mocks/ instead.
    """
    roots = [
        path.relative_to(contracts_dir)
        for path in contracts_dir.rglob("*.sol")
        if (path.relative_to(contracts_dir).parts[0] == TEST_CONTRACTS) == test_contracts
    ]
    pending = [f"contracts/{path.as_posix()}" for path in roots]
    sources: dict[str, str] = {}
    while pending:
        name = pending.pop()
        if name in sources:
            continue
        path = contracts_dir.parent / name if name.startswith("contracts/") else NODE_MODULES / name
        if not path.is_file():
            raise CompilerError(f"cannot find source {name} (looked at {path}); has `npm ci` run?")
        text = path.read_text(encoding="utf-8")
        sources[name] = text
        for imported in _IMPORT.findall(text):
            pending.append(_resolve_import(name, imported))
    return dict(sorted(sources.items()))


def _resolve_import(importer: str, imported: str) -> str:
    if not imported.startswith("."):
        return imported
    parts = importer.split("/")[:-1]
    for part in imported.split("/"):
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def standard_input(sources: dict[str, str]) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "viaIR": True,
            "metadata": {"bytecodeHash": "ipfs"},
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]}
            },
        },
    }


def compile_contracts(solc_binary: Path | None = None, test_contracts: bool = False) -> CompiledContracts:
    """Compile the package's contracts and return the artifact files to write (or, with
    `test_contracts`, the test-only contracts of contracts/mocks/, which are never written)."""
    binary = solc_binary or SOLC_SHIM
    sources = collect_sources(test_contracts=test_contracts)
    input_json = standard_input(sources)
    try:
        version = solcx.wrapper.get_solc_version(binary)
        output = solcx.compile_standard(input_json, solc_binary=binary)
    except (SolcError, OSError) as exc:
        raise CompilerError(f"{binary}: {exc}") from exc
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise CompilerError("\n".join(errors))

    files: dict[str, str] = {}
    for source_name, contracts in output["contracts"].items():
        if not source_name.startswith("contracts/"):
            continue  # libraries are compiled into ours; their own artifacts are not shipped
        for contract_name, compiled in contracts.items():
            artifact = {
                "contractName": contract_name,
                "sourceName": source_name,
                "abi": compiled["abi"],
                "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
                "metadata": json.loads(compiled["metadata"]),
            }
            files[f"{contract_name}.json"] = _dump(artifact)
    files["build-info.json"] = _dump(
        {
            "compiler": f"solc {version}",
            "evmVersion": EVM_VERSION,
            "optimizerRuns": OPTIMIZER_RUNS,
            # Lets a verifier prove which sources these artifacts came from (the proof bundle cites it).
            "inputSha256": hashlib.sha256(_dump(input_json).encode()).hexdigest(),
            "sources": {name: hashlib.sha256(text.encode()).hexdigest() for name, text in sources.items()},
        }
    )
    return CompiledContracts(files)


def stale_artifacts(compiled: CompiledContracts, artifacts_dir: Path = ARTIFACTS_DIR) -> list[str]:
    """Names of artifact files that differ from a fresh compile, are missing, or are left over."""
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in artifacts_dir.glob("*.json")}
    names = set(on_disk) | set(compiled.files)
    return sorted(name for name in names if on_disk.get(name) != compiled.files.get(name))


def write_artifacts(compiled: CompiledContracts, artifacts_dir: Path = ARTIFACTS_DIR) -> None:
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    for path in artifacts_dir.glob("*.json"):
        if path.name not in compiled.files:
            path.unlink()
    for name, text in compiled.files.items():
        (artifacts_dir / name).write_text(text, encoding="utf-8")


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"
