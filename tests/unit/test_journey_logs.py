"""GET /orders/{id}/logs's reader: only the exact correlation id, merged in time order, and
every read bounded (bytes per file, lines kept)."""

import json

import pytest

from recordstore.journey_logs import LogsUnavailable, read_journey

CID = "web-0123456789abcdef"


def write(path, *lines) -> None:
    path.write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines))


def api_line(event: str, at: str, cid: str = CID, **fields) -> dict:
    return {"event": event, "timestamp": at, "correlation_id": cid, "level": "info",
            "service": "kodekloud-record-store-api", "logger": "api.request", **fields}


def test_lines_of_the_three_components_merge_in_time_order(tmp_path):
    # The gateway logs when the request ends: its line sorts by when it began (msec less
    # request_time), before the API's lines of the same request.
    write(tmp_path / "gateway.log",
          {"time": "2026-12-03T19:00:00+00:00", "msec": 1796324400.500, "request_time": 0.400,
           "event": "request", "correlation_id": CID, "uri": "/checkout", "status": 202,
           "user_agent": "Mozilla"})
    write(tmp_path / "api.log",
          api_line("checkout_accepted", "2026-12-03T19:00:00.200000Z", span_id="a" * 16),
          api_line("request_finished", "2026-12-03T19:00:00.450000Z"))
    write(tmp_path / "worker.log",
          api_line("payment_authorized", "2026-12-03T19:00:03.000000Z",
                   service="kodekloud-record-store-worker", span_id="b" * 16),
          "not json at all",
          json.dumps(["a", "list", CID]))
    found = read_journey(tmp_path, CID)
    assert [(x["source"], x["event"]) for x in found.lines] == [
        ("gateway", "request"), ("api", "checkout_accepted"), ("api", "request_finished"),
        ("worker", "payment_authorized")]
    assert found.lines[0]["at"] == "2026-12-03T19:00:00.100+00:00"
    assert "user_agent" not in found.lines[0] and "logger" not in found.lines[1]
    assert found.lines[1]["span_id"] == "a" * 16
    assert found.sources == {"gateway.log": "read", "api.log": "read", "worker.log": "read"}
    assert not found.truncated


def test_only_the_exact_correlation_id(tmp_path):
    write(tmp_path / "api.log",
          api_line("mine", "2026-12-03T19:00:01Z"),
          api_line("longer id", "2026-12-03T19:00:02Z", cid=CID + "0"),
          api_line("shorter id", "2026-12-03T19:00:03Z", cid=CID[:-1]),
          api_line("only in a field", "2026-12-03T19:00:04Z", cid="other", note=CID))
    found = read_journey(tmp_path, CID)
    assert [x["event"] for x in found.lines] == ["mine"]
    assert found.sources["gateway.log"] == "missing"


def test_only_the_last_bytes_of_a_file_are_read(tmp_path):
    old = api_line("old", "2026-12-03T18:00:00Z")
    new = api_line("new", "2026-12-03T19:00:00Z")
    filler = [api_line("noise", "2026-12-03T18:30:00Z", cid="other") for _ in range(50)]
    write(tmp_path / "api.log", old, *filler, new)
    window = len(json.dumps(new)) + 300  # the new line and a fragment of a noise line
    found = read_journey(tmp_path, CID, max_bytes=window)
    assert [x["event"] for x in found.lines] == ["new"]
    assert found.sources["api.log"] == "partial"


def test_the_rotated_file_is_read_within_the_same_budget(tmp_path):
    """The current file rolled over a moment ago: the rest of the budget reads the end of
    api.log.1, where the journey's earlier lines are; what lies beyond the budget is not."""
    filler = [api_line("noise", "2026-12-03T18:30:00Z", cid="other") for _ in range(50)]
    write(tmp_path / "api.log.1", api_line("too old", "2026-12-03T18:00:00Z"), *filler,
          api_line("before the rollover", "2026-12-03T19:00:00Z"))
    write(tmp_path / "api.log", api_line("after the rollover", "2026-12-03T19:00:01Z"))
    window = (tmp_path / "api.log").stat().st_size + 500
    found = read_journey(tmp_path, CID, max_bytes=window)
    assert [x["event"] for x in found.lines] == ["before the rollover", "after the rollover"]
    assert (found.sources["api.log"], found.sources["api.log.1"]) == ("read", "partial")


def test_at_most_max_lines_the_latest_kept(tmp_path):
    write(tmp_path / "api.log",
          *(api_line(f"step {i}", f"2026-12-03T19:00:{i:02d}Z") for i in range(10)))
    found = read_journey(tmp_path, CID, max_lines=3)
    assert [x["event"] for x in found.lines] == ["step 7", "step 8", "step 9"]
    assert found.truncated


def test_an_overlong_line_is_skipped_not_parsed(tmp_path):
    write(tmp_path / "api.log", api_line("huge", "2026-12-03T19:00:00Z", blob="x" * 20_000),
          api_line("fine", "2026-12-03T19:00:01Z"))
    assert [x["event"] for x in read_journey(tmp_path, CID).lines] == ["fine"]


@pytest.mark.parametrize("log_dir", ["", "/nonexistent/lab-logs"])
def test_no_log_directory_is_a_clear_error(log_dir):
    with pytest.raises(LogsUnavailable, match="log directory"):
        read_journey(log_dir, CID)
