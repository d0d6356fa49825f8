"""Seed the shop: create the tables if needed, then customers and orders, in steps.

Parameters: connection (default conn_shop), customers (default 100), orders (default 500).
"""

from seedbed.sdk import Seedbed

dm = Seedbed()
db = dm.connection(dm.params.get("connection", "conn_shop"))
n_customers = int(dm.params.get("customers", "100"))
n_orders = int(dm.params.get("orders", "500"))

with dm.step("schema"):
    for statement in dm.workspace.read_text("shop/schema.sql").split(";"):
        if statement.strip():
            db.execute(statement)

with dm.step("customers"):
    customers = dm.generate("tmpl_customer", count=n_customers)
    db.insert("customers", customers, on_conflict="ignore", key=["id"])
    dm.log.info("customers seeded", count=len(customers))

with dm.step("orders"):
    orders = dm.generate(
        "tmpl_order", count=n_orders, overrides={"customer_id": dm.pick_from([c["id"] for c in customers])}
    )
    db.insert("orders", orders, on_conflict="ignore", key=["id"])
    dm.log.info("orders seeded", count=len(orders))

print(f"seeded {len(customers)} customers and {len(orders)} orders")
