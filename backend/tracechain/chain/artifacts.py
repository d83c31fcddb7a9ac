"""Compiled contracts shipped inside the package (written by `tracechain compile`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tracechain.errors import ChainError

ARTIFACTS_DIR = Path(__file__).parent / "artifacts"


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


@cache
def load_artifact(name: str) -> Artifact:
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise ChainError(f"no compiled artifact for {name} at {path}; run `tracechain compile`")
    data = json.loads(path.read_text(encoding="utf-8"))
    return Artifact(name, data["abi"], data["bytecode"], data["deployedBytecode"])


@cache
def build_info() -> dict[str, Any]:
    info: dict[str, Any] = json.loads((ARTIFACTS_DIR / "build-info.json").read_text(encoding="utf-8"))
    return info


def all_artifacts() -> list[Artifact]:
    return [
        load_artifact(path.stem) for path in sorted(ARTIFACTS_DIR.glob("*.json")) if path.stem != "build-info"
    ]
