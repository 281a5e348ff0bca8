"""A failed order's reason as a code and a detail, not one "code: detail" string to parse.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("failure_code", sa.String(length=40), nullable=True))
    op.add_column("orders", sa.Column("failure_detail", sa.String(length=200), nullable=True))
    # The rows failed so far keep their meaning: "out_of_stock: product 3 has 0 left" becomes
    # the code out_of_stock and the detail "product 3 has 0 left"; a reason without ":" is a code.
    op.execute("""
        UPDATE orders SET
            failure_code = left(btrim(split_part(failure_reason, ':', 1)), 40),
            failure_detail = CASE WHEN strpos(failure_reason, ':') > 0 THEN
                NULLIF(btrim(substr(failure_reason, strpos(failure_reason, ':') + 1)), '') END
        WHERE failure_reason IS NOT NULL
    """)
    op.drop_constraint(op.f("ck_orders_failed_has_reason"), "orders", type_="check")
    op.drop_column("orders", "failure_reason")
    op.create_check_constraint(
        op.f("ck_orders_failed_has_code"), "orders",
        "status <> 'failed' OR failure_code IS NOT NULL",
    )


def downgrade() -> None:
    op.add_column("orders", sa.Column("failure_reason", sa.String(length=200), nullable=True))
    op.execute("""
        UPDATE orders
        SET failure_reason = left(failure_code || coalesce(': ' || failure_detail, ''), 200)
        WHERE failure_code IS NOT NULL
    """)
    op.drop_constraint(op.f("ck_orders_failed_has_code"), "orders", type_="check")
    op.drop_column("orders", "failure_detail")
    op.drop_column("orders", "failure_code")
    op.create_check_constraint(
        op.f("ck_orders_failed_has_reason"), "orders",
        "status <> 'failed' OR failure_reason IS NOT NULL",
    )
