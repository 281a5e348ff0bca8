from collections import Counter

from recordstore.catalog import ALBUMS, FORMATS, GENRES


def test_catalog_is_big_and_varied_enough():
    assert len(ALBUMS) >= 60
    assert len(GENRES) >= 8
    per_genre = Counter(a.genre for a in ALBUMS)
    assert set(per_genre) == set(GENRES)
    assert min(per_genre.values()) >= 5


def test_catalog_rows_are_valid():
    assert len({a.sku for a in ALBUMS}) == len(ALBUMS)
    assert len({(a.title, a.artist) for a in ALBUMS}) == len(ALBUMS)
    for a in ALBUMS:
        assert a.format in FORMATS
        assert isinstance(a.price_cents, int) and a.price_cents > 0
        assert a.stock >= 0
        assert 1900 <= a.release_year <= 2100


def test_the_guides_product_1_can_be_bought_many_times():
    assert ALBUMS[0].sku == "RS-0001" and ALBUMS[0].stock >= 100


def test_catalog_has_scarce_and_sold_out_albums_for_the_exercises():
    assert any(a.stock == 0 for a in ALBUMS)
    assert any(0 < a.stock <= 3 for a in ALBUMS)
