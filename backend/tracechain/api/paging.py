"""Paging of every listing the API answers, as the EPCIS 2.0 REST binding pages: `perPage` items
at a time, the next page linked with `Link: <…?nextPageToken=…>; rel="next"`.

A token is the listing's own position (the last item's sort key, as JSON) in base64url: it holds no
state on the server, so it never expires and there is nothing to delete. A token that does not
read back is a QueryParameterException, as any malformed parameter."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import Request, Response

from tracechain.epcis.query import MAX_PER_PAGE, InvalidQuery

NOT_ISSUED_HERE: Final = "not one this service issued"


def encode_token(position: Any) -> str:
    """The token of a position: any JSON value."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_token(token: str) -> Any:
    """The position a token holds; InvalidQuery naming nextPageToken if it is none this service
    issued (callers check the position's shape, and raise `not_issued_here()` if it is wrong)."""
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError) as exc:
        raise not_issued_here() from exc


def not_issued_here(reason: str = NOT_ISSUED_HERE) -> InvalidQuery:
    return InvalidQuery([("nextPageToken", reason)])


def per_page_of(value: str) -> int:
    if not value.isdecimal() or not 1 <= int(value) <= MAX_PER_PAGE:
        raise ValueError(f"an integer from 1 to {MAX_PER_PAGE}")
    return int(value)


@dataclass(frozen=True)
class Paging:
    """What a listing was asked: how many items a page, and after which position (None: first page)."""

    per_page: int
    after: Any


def paging_of(request: Request, default_per_page: int, listing: str) -> Paging:
    """The request's `perPage` and `nextPageToken`; any other parameter is refused, naming the
    `listing` that takes only these two."""
    problems: list[tuple[str, str]] = []
    per_page, after = default_per_page, None
    for name, value in request.query_params.multi_items():
        if name == "perPage":
            try:
                per_page = per_page_of(value)
            except ValueError as exc:
                problems.append((name, str(exc)))
        elif name == "nextPageToken":
            try:
                after = decode_token(value)
            except InvalidQuery as exc:
                problems += exc.problems
        else:
            problems.append((name, f"{listing} takes only perPage and nextPageToken"))
    if problems:
        raise InvalidQuery(problems)
    return Paging(per_page, after)


def link_next(request: Request, response: Response, params: Sequence[tuple[str, Any]]) -> None:
    """`Link: rel="next"` to this path with `params` (which carry the next page's token)."""
    response.headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'


def next_page(request: Request, response: Response, per_page: int, position: Any) -> None:
    """Link the page after `position` of a listing that takes only perPage and nextPageToken."""
    link_next(request, response, [("perPage", per_page), ("nextPageToken", encode_token(position))])
