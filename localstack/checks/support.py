"""What every self-check needs: boto3 clients and the control endpoint of the emulator under test."""

import json
import os
import urllib.request

import boto3

ENDPOINT = os.environ.get("LAKESIGHT_SELFTEST_ENDPOINT", "http://127.0.0.1:4566")
ACCOUNT = "123456789012"


def client(service, region="us-east-1"):
    return boto3.client(
        service, endpoint_url=ENDPOINT, region_name=region, aws_access_key_id="test", aws_secret_access_key="test"
    )


def control(path, body=None):
    """POSTs to /lakesight-emulator/<path> and returns the decoded answer."""
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(
        f"{ENDPOINT}/lakesight-emulator/{path}", data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    return json.loads(urllib.request.urlopen(request).read() or b"{}")


def inspect(path):
    """GETs /lakesight-emulator/<path> and returns the decoded answer."""
    return json.loads(urllib.request.urlopen(f"{ENDPOINT}/lakesight-emulator/{path}").read())
