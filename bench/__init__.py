"""`./lab bench`: the purchase journey's speed and what observability costs, on the native stack.

A developer's tool (standard library and labctl only); see docs/performance.md."""
