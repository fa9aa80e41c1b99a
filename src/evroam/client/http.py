"""The one shared outbound HTTP client of a node.

aiohttp is the fastest mature asyncio HTTP client; one session per node keeps
connections pooled across every outbound call (and, later, hub forwarding).
"""

from __future__ import annotations

import aiohttp


def new_session(total_timeout: float = 30.0, limit: int = 100) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=total_timeout, connect=10.0),
        # Per host as many keep-alive connections as the delivery worker has
        # sends in flight (sync/delivery.py), so a push to one partner never
        # queues for a connection nor opens one per request.
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=32, ttl_dns_cache=300),
        # We decide what a partner's body means; never let the client guess.
        auto_decompress=True,
        raise_for_status=False,
    )
