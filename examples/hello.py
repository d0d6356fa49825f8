"""A first scenario: generate a few customers with Faker and report progress through the SDK.

Run it with `./scripts/demo` or `seedbed run submit --local examples/hello.py -p customers=5`.
"""

import json

from faker import Faker

from seedbed.sdk import log, params, run_id

count = int(params.get("customers", "3"))
fake = Faker()
fake.seed_instance(run_id)  # deterministic per run, never the global seed

log.info("generating customers", count=count)
for i in range(1, count + 1):
    customer = {"id": i, "name": fake.name(), "email": fake.email(), "city": fake.city()}
    print(json.dumps(customer))
log.info("done", generated=count)
