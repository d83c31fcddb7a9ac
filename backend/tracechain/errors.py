"""One root exception; every failure tracechain reports is a subclass that says what went wrong."""

from __future__ import annotations

from typing import Any, ClassVar


class TracechainError(Exception):
    """Root of every error tracechain raises on purpose."""


class ConfigurationError(TracechainError):
    """A setting is missing or contradicts another."""


class NotDeployedYet(ConfigurationError):
    """A worker process found no node or no contracts yet: `tracechain serve` starts and deploys them."""


class CompilerError(TracechainError):
    """The Solidity compiler could not be run or rejected the sources."""


class ChainError(TracechainError):
    """The chain could not be reached or answered something unexpected."""


class NodeStartError(ChainError):
    """The managed node did not start."""


class ContractRevert(ChainError):
    """A contract call reverted with one of the contracts' custom errors.

    `chain.reverts` builds one subclass per custom error in the ABIs, named after it
    (`TraceRegistryNotCustodian`), so callers catch exactly the failure they handle and read its
    arguments by name.
    """

    error_name: ClassVar[str] = "ContractRevert"

    def __init__(self, arguments: dict[str, Any]) -> None:
        self.arguments = arguments
        shown = ", ".join(f"{key}={_show(value)}" for key, value in arguments.items())
        super().__init__(f"{self.error_name}({shown})")


class UnknownRevert(ChainError):
    """A call reverted with data that matches no custom error tracechain knows."""

    def __init__(self, data: str) -> None:
        self.data = data
        super().__init__(f"reverted with unrecognised data {data or '(empty)'}")


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
