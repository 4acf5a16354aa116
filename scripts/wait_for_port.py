"""Wait until HOST:PORT accepts connections (run_stack starts the Celery processes behind the
web server, so the first page does not share the two cores with three more interpreters).

Run with `python -S`: no site packages, so it starts in milliseconds. Gives up after 60 s and
lets the caller start anyway.
"""

import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        socket.create_connection((host, port), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
