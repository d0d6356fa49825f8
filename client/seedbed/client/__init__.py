"""Python client of a Seedbed coordinator.

from seedbed.client import Client
with Client("127.0.0.1:50051") as client:
    client.put_scenario("hello", script=open("hello.py").read())
    fire = client.run("hello", params={"rows": "10"})
    for line in client.stream_logs(fire.run_id):
        print(line.text)
"""

from seedbed.client._client import Client, ClientError, LogEvent, RunEnded

__all__ = ["Client", "ClientError", "LogEvent", "RunEnded"]
