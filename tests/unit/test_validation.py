import pytest
from pydantic import ValidationError

from api.schemas import CheckoutIn
from recordstore import correlation


def test_the_guides_minimal_checkout_gets_defaults():
    body = CheckoutIn.model_validate({"product_id": 1, "quantity": 1})
    assert body.customer_email == "guest@recordstore.example"
    assert body.payment_method == "credit_card"


@pytest.mark.parametrize("payload", [
    {},
    {"product_id": 0},
    {"product_id": 2**31},
    {"product_id": 1, "quantity": 0},
    {"product_id": 1, "quantity": 11},
    {"product_id": 1, "quantity": "many"},
    {"product_id": True},
    {"product_id": "3"},
    {"product_id": 1.0},
    {"product_id": 1, "quantity": "3"},
    {"product_id": 1, "quantity": True},
    {"product_id": 1, "customer_email": "not-an-email"},
    {"product_id": 1, "payment_method": "bitcoin"},
    {"product_id": 1, "discount": 100},
])
def test_bad_checkout_bodies_are_refused(payload):
    with pytest.raises(ValidationError):
        CheckoutIn.model_validate(payload)


@pytest.mark.parametrize("value,ok", [
    ("abc-123-def", True),
    ("0af7651916cd43dd8448eb211c80319c", True),
    ("a" * 128, True),
    ("a" * 129, False),
    ("", False),
    ("-leading-dash", False),
    ("has space", False),
    ("semi;colon", False),
    ("new\nline", False),
])
def test_correlation_ids_are_bounded_and_safe(value, ok):
    assert correlation.is_valid(value) is ok
