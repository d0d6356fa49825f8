"""The classic seeding scenario, unchanged: 100 customers, then 500 orders that reference them.

Needs the templates of this folder and a connection `conn_postgres` whose database has the tables
of schema.sql.
"""

from seedbed.sdk import Seedbed

dm = Seedbed()

# 1. Generate 100 customers and seed Postgres.
customers = dm.generate(template_id="tmpl_customer", count=100)
dm.connection("conn_postgres").insert(table="customers", rows=customers)

# 2. Generate 500 orders, each referencing a real customer.id.
customer_ids = [c["id"] for c in customers]
orders = dm.generate(
    template_id="tmpl_order",
    count=500,
    overrides={"customer_id": dm.pick_from(customer_ids)},
)
dm.connection("conn_postgres").insert(table="orders", rows=orders)
print(f"seeded {len(customers)} customers and {len(orders)} orders")
