"""A changed TRACECHAIN_MASTER_SECRET is refused when the service starts, naming the setting, not
found at a participant's first capture as a 503 "does not decrypt"."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import delete

from tracechain.keys import WrongMasterSecret
from tracechain.services import Services
from tracechain.store.db import transaction
from tracechain.store.models import KeyCheck

from .conftest import Api


def _start(api: Api, master_secret: str) -> None:
    settings = api.services.settings.model_copy(update={"master_secret": SecretStr(master_secret)})
    Services.start(settings, api.services.chain).stop()


def test_another_master_secret_is_refused_at_start_and_the_same_one_starts(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    with pytest.raises(WrongMasterSecret, match="TRACECHAIN_MASTER_SECRET is not the secret"):
        _start(api, "another master secret of 32 chars or more, mistyped")
    _start(api, api.services.settings.master_secret.get_secret_value())  # type: ignore[union-attr]


def test_a_database_served_before_the_check_is_checked_on_a_held_key_then_given_the_check(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    with transaction(api.services.sessions) as session:
        session.execute(delete(KeyCheck))
    with pytest.raises(WrongMasterSecret):
        # the participants' keys do not decrypt under it
        _start(api, "another master secret of 32 chars or more, mistyped")
    with api.services.sessions() as session:
        assert session.get(KeyCheck, 1) is None  # nothing written under the wrong secret

    _start(api, api.services.settings.master_secret.get_secret_value())  # type: ignore[union-attr]
    with api.services.sessions() as session:
        assert session.get(KeyCheck, 1) is not None
    with pytest.raises(WrongMasterSecret):
        _start(api, "another master secret of 32 chars or more, mistyped")
