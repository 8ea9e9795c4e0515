"""The webhook HTTP client: one urllib3 PoolManager per process (connections reused across jobs, keyed
by address, port and SNI name), a POST pinned to the address the SSRF guard checked (the endpoint's
name goes only into Host, SNI and the certificate check), no redirects, and the answer captured up to
MAX_RESPONSE_BYTES; and Retry-After parsing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3

from app import clock
from app.webhooks import ssrf
from app.webhooks.outbound_models import MAX_RESPONSE_BYTES

USER_AGENT = "Tenantry-Webhooks/1.0"
MAX_ERROR = 1000
_pool: urllib3.PoolManager | None = None


def pool_manager() -> urllib3.PoolManager:
    """The process's connection pools (one per destination address, port and TLS name)."""
    global _pool
    if _pool is None:
        try:
            import certifi

            ca_certs = certifi.where()
        except ImportError:  # pragma: no cover - certifi ships with requirements.txt
            ca_certs = None
        _pool = urllib3.PoolManager(num_pools=200, maxsize=4, cert_reqs="CERT_REQUIRED", ca_certs=ca_certs)
    return _pool


@dataclass
class Response:
    """What one attempt got back (status None: no HTTP answer, see error)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str = ""
    duration_ms: int = 0


def _cut_headers(headers: Any) -> dict[str, str]:
    out, size = {}, 0
    for name, value in headers.items():
        size += len(name) + len(value) + 4
        if size > MAX_RESPONSE_BYTES:
            break
        out[name] = value
    return out


def post(destination: ssrf.Destination, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """POST to the checked address, pinned; never follows redirects; reads at most 20 KB of the answer."""
    started = time.monotonic()
    pool_kwargs: dict[str, Any] = {}
    if destination.scheme == "https":
        pool_kwargs = {"assert_hostname": destination.host, "server_hostname": destination.host}
    out = Response()
    try:
        pool = pool_manager().connection_from_host(destination.address, destination.port, destination.scheme,
                                                   pool_kwargs=pool_kwargs)
        answer = pool.urlopen(
            "POST", destination.target, body=body,
            headers={"Host": destination.host_header, "Content-Type": "application/json", "User-Agent": USER_AGENT,
                     **headers},
            redirect=False, retries=False, assert_same_host=False, preload_content=False,
            timeout=urllib3.Timeout(connect=min(5.0, timeout), read=timeout),
        )
        chunks, size, complete = [], 0, False
        while size <= MAX_RESPONSE_BYTES:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"no complete answer within {timeout:g} s")
            chunk = answer.read(8192)
            if not chunk:
                complete = True
                break
            chunks.append(chunk)
            size += len(chunk)
        if not complete:
            answer.close()  # the rest is not read: drop the connection rather than reuse it
        answer.release_conn()
        out.status, out.headers = answer.status, _cut_headers(answer.headers)
        out.body = b"".join(chunks)[:MAX_RESPONSE_BYTES].decode("utf-8", "replace")
    except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
    out.duration_ms = int((time.monotonic() - started) * 1000)
    return out


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date), if any."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - clock.now()).total_seconds())
    except (TypeError, ValueError):
        return None
