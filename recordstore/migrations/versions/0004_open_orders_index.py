"""The orders not yet final, by age: what the API's open-orders gauges read on every scrape.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_open", "orders", ["created_at"],
                    postgresql_where=sa.text("status IN ('pending', 'processing', 'paid')"))


def downgrade() -> None:
    op.drop_index("ix_orders_open", table_name="orders")
