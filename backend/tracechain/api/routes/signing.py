"""What a client-side signer needs: the EIP-712 domain and types of this deployment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tracechain.api.deps import ServicesDep
from tracechain.chain.eip712 import EIP712_DOMAIN_TYPE, TRACE_EVENT_TYPE
from tracechain.chain.trace_event import Kind

router = APIRouter(prefix="/eip712", tags=["signing"])


@router.get("")
def eip712(services: ServicesDep) -> dict[str, Any]:
    """Sign `TraceEvent` messages under this domain with any EIP-712 wallet (eth_signTypedData_v4)."""
    return {
        "domain": services.registry.domain.as_dict(),
        "primaryType": "TraceEvent",
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, "TraceEvent": TRACE_EVENT_TYPE},
        "kinds": {kind.name.lower(): int(kind) for kind in Kind},
    }
