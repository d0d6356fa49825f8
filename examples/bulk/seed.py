"""Seed a warehouse with millions of rows: customers, then orders that reference them.

    seedbed template create examples/bulk/customer.yaml examples/bulk/order.yaml
    seedbed connection create conn_warehouse --kind postgresql --url postgresql://… --writers 2
    seedbed run submit examples/bulk/seed.py -p customers=1000000 -p orders=5000000

The tables are those of schema.sql. No row crosses into this script: each insert is written on the
workers in shards, in parallel, with the run's log showing the progress.
"""

from seedbed.sdk import Seedbed, params

dm = Seedbed()
db = dm.connection(params.get("connection", "conn_warehouse"))

with dm.step("customers"):
    customers = dm.generate("tmpl_bulk_customer", count=int(params.get("customers", "1000000")))
    db.insert("customers", customers)

with dm.step("orders"):
    orders = dm.generate("tmpl_bulk_order", count=int(params.get("orders", "5000000")))
    db.insert("orders", orders)

print(f"seeded {len(customers):,} customers and {len(orders):,} orders")
