"""Twilio's list envelope (docs/twilio.md, "Lists and paging"): the records under the resource's
key, and page links that are paths relative to the host, built as Twilio builds them: the
request's filters, then `PageSize`, `Page` and `PageToken`. A `PageToken` is `PA` and the sid of
the previous page's last record (`PB` and the first record's sid for the page before), so a page
stays put while newer records arrive."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

DEFAULT_PAGE_SIZE = 50


def page_of[T](
    records: Sequence[T],
    *,
    sid: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
    key: str,
    path: str,
    filters: list[tuple[str, str]],
    page_size: int | None,
    page: int | None,
    token: str | None,
) -> dict[str, Any]:
    size = page_size or DEFAULT_PAGE_SIZE
    number = page or 0
    sids = [sid(record) for record in records]
    start = _start(sids, size, number, token)
    items = [render(record) for record in records[start : start + size]]  # only the page's

    def uri(page_number: int, page_token: str | None = None) -> str:
        query = [*filters, ("PageSize", str(size)), ("Page", str(page_number))]
        if page_token:
            query.append(("PageToken", page_token))
        return f"{path}?{urlencode(query)}"

    more = start + len(items) < len(records)
    return {
        key: items,
        "end": start + len(items) - 1 if items else start,
        "first_page_uri": uri(0),
        "next_page_uri": uri(number + 1, "PA" + items[-1]["sid"]) if more and items else None,
        "page": number,
        "page_size": size,
        "previous_page_uri": uri(number - 1, "PB" + items[0]["sid"]) if number > 0 and items else None,
        "start": start,
        "uri": uri(number, token),
    }


def _start(sids: list[str], size: int, number: int, token: str | None) -> int:
    """Where the page begins: after (PA) or a page before (PB) the record the token names; by
    page number when there is no token or its record is gone."""
    if token and token[:2] in ("PA", "PB") and token[2:] in sids:
        index = sids.index(token[2:])
        return index + 1 if token.startswith("PA") else max(0, index - size)
    return number * size
