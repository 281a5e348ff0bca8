"""The API's latency histogram tells answers apart by status class, so that SlowCheckout and the
latency SLO can time what shoppers waited for (accepted checkouts), not an outage's fast 503s."""

import subprocess
import sys
import textwrap

from labctl.config import ROOT

APP = textwrap.dedent("""
    from fastapi import FastAPI, HTTPException
    from fastapi.testclient import TestClient
    from api import metrics

    app = FastAPI()

    @app.post("/checkout", status_code=202)
    def checkout(fail: int = 0):
        if fail:
            raise HTTPException(fail)
        return {}

    metrics.instrument(app)
    with TestClient(app) as client:
        for fail in (0, 0, 404, 503, 503, 503):
            client.post("/checkout", params={"fail": fail})
        print(client.get("/metrics", headers={"accept": "text/plain"}).text)
""")


def test_each_answer_is_timed_under_its_status_class():
    text = subprocess.run([sys.executable, "-c", APP], cwd=ROOT, check=True, timeout=60,
                          capture_output=True, text=True).stdout
    counts = {line.split("status_class=")[1][1:4]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines()
              if line.startswith('http_request_duration_seconds_count{handler="/checkout"')
              and "status_class=" in line}
    assert counts == {"2xx": 2, "4xx": 1, "5xx": 3}, text[-3000:]
