"""Whether the admin routes may run with a token on an address: the rule the API's settings
apply at start-up and `./lab up` before it starts anything. Standard library only, since
./lab runs on a plain python3."""

import ipaddress

# Tokens anyone can read (in this repository's history, the code's old fallback, or the
# committed Kubernetes renders' placeholder, which ./lab k8s render replaces).
PUBLISHED_ADMIN_TOKENS = frozenset({"lab-admin-token", "change-me-lab-admin",
                                    "generated-by-lab-k8s-render"})
MIN_EXPOSED_TOKEN_LENGTH = 16


def loopback(bind: str) -> bool:
    """Whether an address to listen on (GATEWAY_BIND) is reachable from this machine only."""
    if bind.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to, assume the network


def admin_token_problem(token: str, gateway_bind: str) -> str | None:
    """Why the admin routes must not run with this token on this address, or None: beyond
    loopback a published, default or short token would let anyone switch faults on."""
    if loopback(gateway_bind) or not token:
        return None
    if token in PUBLISHED_ADMIN_TOKENS or len(token) < MIN_EXPOSED_TOKEN_LENGTH:
        return (f"ADMIN_TOKEN is a published or short token and GATEWAY_BIND={gateway_bind} "
                f"serves the admin routes beyond this machine: remove ADMIN_TOKEN from .env "
                f"and the environment (./lab makes a token of its own) or set one of "
                f"{MIN_EXPOSED_TOKEN_LENGTH}+ characters nobody knows")
    return None
