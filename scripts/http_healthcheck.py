#!/usr/bin/env python3
"""Exit 0 when the web process answers /healthz with 200, else 1 (the image's HEALTHCHECK).

Standard library only. It sends a Host header Django accepts whatever ALLOWED_HOSTS says (the
first entry, a wildcard's domain, or `localhost` for `*`), since the probe itself connects to
127.0.0.1, which production ALLOWED_HOSTS rarely lists.
"""

import http.client
import os
import sys


def allowed_host(allowed_hosts: str) -> str:
    """A host name that ALLOWED_HOSTS (comma-separated, as in the environment) accepts."""
    for entry in (part.strip() for part in allowed_hosts.split(",")):
        if not entry:
            continue
        if entry == "*":
            return "localhost"
        return entry.lstrip(".")  # ".example.com" accepts example.com itself
    return "localhost"


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    host = allowed_host(os.environ.get("ALLOWED_HOSTS", "localhost"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        connection.request("GET", "/healthz", headers={"Host": host})
        response = connection.getresponse()
        body = response.read(2000).decode(errors="replace")
    except OSError as error:
        print(f"unhealthy: {error}")
        return 1
    finally:
        connection.close()
    print(response.status, body)
    return 0 if response.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
