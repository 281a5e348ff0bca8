from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from sqlalchemy import func, literal, select

from api.deps import SessionDep
from api.schemas import ProductOut, ProductPage
from recordstore import chaos
from recordstore.catalog import GENRES
from recordstore.models import Product

router = APIRouter(tags=["catalog"])
Genre = Literal[GENRES]


@router.get("/products", response_model=ProductPage, summary="Browse the catalog")
def list_products(
    session: SessionDep,
    genre: Annotated[Genre | None, Query(description="Only this genre")] = None,
    # No control characters: PostgreSQL refuses a NUL in text, which would be a 500.
    q: Annotated[str | None, Query(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$",
                                   description="Text in the title or artist")] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ProductPage:
    where = []
    if genre:
        where.append(Product.genre == genre)
    if q:
        where.append(func.lower(Product.title + " " + Product.artist)
                     .contains(q.lower(), autoescape=True))
    slow = chaos.slow_query_seconds()
    if slow:  # the slow-queries fault: the catalog query itself waits in PostgreSQL, once
        where.append(literal(1) == select(literal(1)).select_from(func.pg_sleep(slow))
                     .scalar_subquery())
    total = session.scalar(select(func.count()).select_from(Product).where(*where))
    rows = session.scalars(
        select(Product).where(*where).order_by(Product.id)
        .limit(page_size).offset((page - 1) * page_size)
    ).all()
    return ProductPage(items=[ProductOut.model_validate(r) for r in rows], page=page,
                       page_size=page_size, total=total, genres=list(GENRES))


@router.get("/products/{product_id}", response_model=ProductOut, summary="One album")
def get_product(
    session: SessionDep, product_id: Annotated[int, Path(ge=1, le=2_147_483_647)]
) -> ProductOut:
    product = session.get(Product, product_id)
    if product is None:
        raise HTTPException(404, f"product {product_id} does not exist")
    return ProductOut.model_validate(product)
