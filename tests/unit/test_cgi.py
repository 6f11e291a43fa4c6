"""The header handling of the Smart HTTP bridge, without a process.

The server no longer runs git through the CGI program `git http-backend` (app/git/smart.py
says why): it does http-backend's header work itself. The protocol facts (argv,
environment, Git-Protocol validation, preamble, content types, gzip inflation) are
tested in test_git_smart.py; here: what the bridge reads from request headers and
writes as response headers.
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from app.git.smart import NO_CACHE_HEADERS, content_type
from app.web.smart_http import UnsupportedMediaType, _gzip_body


def _request(**headers: str) -> object:
    return make_mocked_request("POST", "/alice/pub.git/git-upload-pack", CIMultiDict(headers))


@pytest.mark.parametrize(
    ("value", "gzip"),
    [
        (None, False),
        ("", False),
        ("identity", False),
        (" Identity ", False),
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        (" gzip ", True),
    ],
)
def test_content_encoding(value: str | None, gzip: bool) -> None:
    request = _request() if value is None else _request(**{"Content-Encoding": value})
    assert _gzip_body(request) is gzip  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["br", "deflate", "compress", "gzip, gzip", "gzip;q=1", "zstd"])
def test_other_content_encodings_are_415(value: str) -> None:
    """Only what git sends is inflated, once: anything else is refused, not passed on."""
    with pytest.raises(UnsupportedMediaType) as info:
        _gzip_body(_request(**{"Content-Encoding": value}))  # type: ignore[arg-type]
    assert info.value.status == 415
    assert value[:10] in info.value.message


def test_response_headers_are_http_backends() -> None:
    """The no-cache headers http-backend sends with every smart response: no proxy may
    keep an advertisement (refs change with every push)."""
    headers = dict(NO_CACHE_HEADERS)
    assert headers["Cache-Control"] == "no-cache, max-age=0, must-revalidate"
    assert headers["Pragma"] == "no-cache"
    assert headers["Expires"] == "Fri, 01 Jan 1980 00:00:00 GMT"
    for service in ("git-upload-pack", "git-receive-pack"):
        assert content_type(service, advertise=True) == f"application/x-{service}-advertisement"
        assert content_type(service, advertise=False) == f"application/x-{service}-result"
