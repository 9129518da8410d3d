"""Paging a Table query or scan: every page in order, each fetched only when it is needed."""

from __future__ import annotations

from switchyard.adapters.aws import item_pages


class PagedTable:
    """A Table double holding three pages; it records the arguments of every call."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self._pages = {None: ([1, 2], "k2"), "k2": ([3], "k3"), "k3": ([4, 5], None)}

    def query(self, **kwargs) -> dict:
        self.calls.append(kwargs)
        items, last_key = self._pages[kwargs.get("ExclusiveStartKey")]
        return {"Items": items, **({"LastEvaluatedKey": last_key} if last_key else {})}


def test_every_page_comes_in_order_with_the_callers_arguments_kept():
    table = PagedTable()
    assert list(item_pages(table.query, IndexName="by_account")) == [[1, 2], [3], [4, 5]]
    assert table.calls == [
        {"IndexName": "by_account"},
        {"IndexName": "by_account", "ExclusiveStartKey": "k2"},
        {"IndexName": "by_account", "ExclusiveStartKey": "k3"},
    ]


def test_a_caller_that_has_enough_reads_no_further_page():
    table = PagedTable()
    for page in item_pages(table.query):
        if 3 in page:
            break
    assert len(table.calls) == 2
