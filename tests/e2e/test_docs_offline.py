"""The API's documentation, /docs (Swagger UI) and /redoc (ReDoc), renders in a real headless
Chromium with every script, style sheet and font served by this server: the machine's network is
closed, as many deployments' are, and a CDN-loaded page stays blank there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ..api.conftest import Api
from .conftest import over_http
from .test_consumer_page import _requests_of_site, run_chromium

DESKTOP = "1280,2000"


@pytest.fixture
def served(api: Api) -> Iterator[str]:
    with over_http(api.client.app) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        # Swagger UI draws each operation as a block naming its path; ReDoc a menu of them.
        ("/docs", ('class="swagger-ui', "opblock", "/capture")),
        ("/redoc", ("redoc-wrap", "/capture")),
    ],
)
def test_the_api_docs_render_with_nothing_asked_of_another_host(
    served: str, tmp_path: Path, path: str, rendered: tuple[str, ...]
) -> None:
    netlog = tmp_path / "netlog.json"
    # Virtual time lets the page's scripts fetch /openapi.json and draw before the DOM is dumped.
    dom = run_chromium(
        "--virtual-time-budget=15000", f"--window-size={DESKTOP}", f"--log-net-log={netlog}", "--dump-dom",
        served + path, profile=tmp_path / "profile",
    ).stdout  # fmt: skip

    for mark in rendered:
        assert mark in dom, mark
    requests = _requests_of_site(netlog, "http://127.0.0.1")
    assert any(url.endswith("/openapi.json") for url in requests)  # the scripts ran and read the API
    hosts = {urlparse(url).hostname for url in requests}
    assert hosts == {"127.0.0.1"}, f"the docs asked other hosts: {hosts}"
