"""GET /products and /products/{id}: filters, paging, validation, in-process."""

import pytest

from recordstore.catalog import ALBUMS, GENRES


def test_the_seeded_catalog_pages_in_id_order(client):
    first = client.get("/products", params={"page_size": 5}).json()
    second = client.get("/products", params={"page_size": 5, "page": 2}).json()
    assert first["total"] >= len(ALBUMS)
    assert (first["page"], first["page_size"], second["page"]) == (1, 5, 2)
    ids = [p["id"] for p in first["items"] + second["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 10
    assert first["genres"] == list(GENRES)


def test_a_page_past_the_end_is_empty_not_an_error(client):
    body = client.get("/products", params={"page": 10_000, "page_size": 100}).json()
    assert body["items"] == [] and body["total"] >= len(ALBUMS)


def test_genre_filter_keeps_only_that_genre(client, product):
    product(genre="Jazz")
    body = client.get("/products", params={"genre": "Jazz", "page_size": 100}).json()
    assert body["items"] and {p["genre"] for p in body["items"]} == {"Jazz"}
    assert body["total"] == len(body["items"])


def test_search_matches_title_or_artist_case_insensitively(client, product):
    pid = product(title="Zyxwv 100% Blue_Note")
    found = client.get("/products", params={"q": "zyxwv 100% BLUE_note"}).json()
    assert [p["id"] for p in found["items"]] == [pid]
    # % and _ are text here, not LIKE wildcards
    assert client.get("/products", params={"q": "Zyxwv 1_0%"}).json()["total"] == 0
    by_artist = client.get("/products", params={"q": "TESTER", "page_size": 100}).json()
    assert pid in [p["id"] for p in by_artist["items"]]


@pytest.mark.parametrize("params", [
    {"genre": "Polka"}, {"page": 0}, {"page": 10_001}, {"page_size": 0}, {"page_size": 101},
    {"q": ""}, {"q": "x" * 101}, {"q": "a\x00b"}, {"page": "two"},
])
def test_bad_query_parameters_are_422_naming_the_parameter(client, params):
    r = client.get("/products", params=params)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "validation_error"
    assert [d["loc"] for d in body["detail"]] == [["query", next(iter(params))]]


def test_one_product_by_id(client, product):
    pid = product(stock=7, price=2599)
    body = client.get(f"/products/{pid}").json()
    assert (body["id"], body["stock"], body["price_cents"]) == (pid, 7, 2599)


@pytest.mark.parametrize(("path", "status"), [
    ("/products/2147483647", 404), ("/products/0", 422), ("/products/2147483648", 422),
    ("/products/abc", 422),
])
def test_missing_or_malformed_product_ids(client, path, status):
    r = client.get(path)
    assert r.status_code == status
    assert r.json()["error"] == ("not_found" if status == 404 else "validation_error")
