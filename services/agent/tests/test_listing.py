"""ListSecrets answers are kept per index version: reused while nothing changes, right after every change."""

from __future__ import annotations

import dataclasses

from hsm_agent import listing
from hsm_agent.store import index, layout
from hsmproto.v1 import hsm_pb2


def head(path: str, version: int = 1, deleted: bool = False) -> layout.Head:
    return layout.Head(
        path=path,
        version=version,
        generation=f"{version:016x}",
        keys=() if deleted else ("password", "user"),
        checksum="" if deleted else f"sha256:{version:064x}",
        deleted=deleted,
        metadata=layout.Metadata(),
        writer="dev-a",
        time="2026-12-02T10:00:00Z",
    )


def expected(heads: list[layout.Head]) -> hsm_pb2.ListSecretsResponse:
    """The answer built the straightforward way, one message per entry."""
    return hsm_pb2.ListSecretsResponse(
        paths=[h.path for h in heads if not h.deleted], entries=[listing.entry(h) for h in heads]
    )


def test_an_unchanged_index_answers_with_the_kept_listing() -> None:
    heads = index.Index()
    heads.replace_all({f"ns/s-{i}": head(f"ns/s-{i}") for i in range(3)})
    listings = listing.Listings(heads)
    assert listings.response("ns/", False) is listings.response("ns/", False)


def test_every_change_shows_in_the_next_listing() -> None:
    heads = index.Index()
    listings = listing.Listings(heads)
    assert listings.response("", True) == hsm_pb2.ListSecretsResponse()
    heads.put(head("ns/a"))
    heads.put(head("ns/b"))
    heads.put(head("other/c"))
    assert listings.response("ns/", False) == expected([head("ns/a"), head("ns/b")])
    heads.put(head("ns/a", 2))
    assert listings.response("ns/", False) == expected([head("ns/a", 2), head("ns/b")])
    heads.put(head("ns/b", 3, deleted=True))
    assert listings.response("ns/", False) == expected([head("ns/a", 2)])
    assert listings.response("ns/", True) == expected([head("ns/a", 2), head("ns/b", 3, deleted=True)])
    heads.replace_all({"ns/a": head("ns/a", 2)})
    assert listings.response("", True) == expected([head("ns/a", 2)])
    assert listings.response("other/", False) == hsm_pb2.ListSecretsResponse()


def test_a_rescan_that_finds_the_same_heads_keeps_the_listing() -> None:
    heads = index.Index()
    heads.replace_all({"ns/a": head("ns/a")})
    listings = listing.Listings(heads)
    kept = listings.response("ns/", False)
    heads.replace_all({"ns/a": dataclasses.replace(head("ns/a"))})  # an equal head, as a rescan reads it
    assert listings.response("ns/", False) is kept


def test_many_prefixes_keep_only_the_latest_listings() -> None:
    heads = index.Index()
    heads.put(head("ns/a"))
    listings = listing.Listings(heads)
    for i in range(listing.MAX_LISTINGS + 5):
        listings.response(f"p{i}/", False)
    assert listings.response("ns/", False) == expected([head("ns/a")])
    assert len(listings._answers) <= listing.MAX_LISTINGS


def test_a_page_is_the_part_of_the_listing_after_its_start() -> None:
    heads = index.Index()
    everything = {f"ns/s-{i:02d}": head(f"ns/s-{i:02d}", deleted=i % 3 == 0) for i in range(30)}
    heads.replace_all({**everything, "nt/a": head("nt/a"), "nr/a": head("nr/a")})
    listings = listing.Listings(heads)
    for include_deleted in (False, True):
        whole = list(listings.response("ns/", include_deleted).entries)
        for start in range(len(whole)):
            after = whole[start - 1].path if start else ""
            for limit in (1, 4, 50):
                page = listings.page("ns/", include_deleted, after, limit)
                assert list(page.entries) == whole[start : start + limit]
                assert list(page.paths) == [e.path for e in whole[start : start + limit] if not e.deleted]
