"""The CLI as the demo uses it: a subprocess serving the API and signed webhooks."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from openphone_sandbox.testing import WebhookSink
from tests.support.waiting import wait_until


def test_serve_subprocess(receiver: WebhookSink) -> None:
    secret = "c2FuZGJveC1zZWNyZXQtZm9yLXRlc3RzLTAxMjM0NTY3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "openphone_sandbox", "serve", "--port", "0", "--seed", "3", "--api-key", "k1",
         "--webhook-url", receiver.url, "--webhook-secret", secret, "--history-days", "1",
         "--messages-per-day", "10", "--rate-limit", "100", "--drop-rate", "0", "--5xx-rate", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["webhookSecret"] == secret and info["apiKey"] == "k1"
        api = info["apiUrl"]
        lines = httpx.get(api + "/phone-numbers", headers={"Authorization": "k1"}).json()["data"]
        assert {ln["id"] for ln in lines} == {ln["id"] for ln in info["lines"]}
        resp = httpx.post(info["baseUrl"] + "/_sandbox/simulate/inbound-message", json={"text": "hi"})
        assert resp.status_code == 201
        wait_until(lambda: receiver.requests(), timeout=10)
        assert "openphone-signature" in receiver.requests()[0][0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
