"""The REST variant: post customers one by one and orders in batches to an HTTP API.

Needs a connection `conn_api` of kind rest whose base URL serves POST /customers and POST /orders.
"""

from seedbed.sdk import Seedbed

dm = Seedbed()
api = dm.connection("conn_api")
customers = dm.generate("tmpl_customer", count=int(dm.params.get("customers", "20")))
api.post("/customers", customers, mode="single")
orders = dm.generate(
    "tmpl_order",
    count=int(dm.params.get("orders", "50")),
    overrides={"customer_id": dm.pick_from([c["id"] for c in customers])},
)
api.post("/orders", orders, mode="batch")
print(f"posted {len(customers)} customers and {len(orders)} orders")
