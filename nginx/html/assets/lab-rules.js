// The rules the order page (trace-view.js, app.js) and the lab's Python (labkit/rules.py)
// share, written once. Python reads the object below as JSON: keep it strict JSON (double
// quotes, no comments or trailing commas in it, and no curly brackets in these comments).
export default {
  "service_prefix": "kodekloud-record-store-",
  "order_steps": ["pending", "processing", "paid", "confirmed"],
  "final_statuses": ["confirmed", "failed"],
  "trace_tree": {
    "parent_reference": "CHILD_OF",
    "trace_id_hex_digits": 32
  },
  "span_error": {
    "tags": {"error": [true, "true"], "otel.status_code": ["ERROR"]},
    "message_tags": ["otel.status_description", "error.message", "exception.message"]
  },
  "span_component": [
    {"component": "database", "tag": "db.system.name"},
    {"component": "queue", "kinds": ["producer", "consumer"]},
    {"component": "queue", "tag": "messaging.system"}
  ]
};
