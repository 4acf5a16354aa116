"""wrk and /proc plumbing for bench/http_load.py: a free port, the CPU time of a process tree,
wrk's Lua script (fresh Idempotency-Keys, optional delay between requests, a JSON summary) and
a run of it."""

import json
import os
import re
import secrets
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _process_tree(roots: list[int]) -> list[int]:
    """The pids of `roots` and of all their descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], list(roots)
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, ()))
    return found


def cpu_seconds(roots: list[int]) -> float:
    """CPU time (user + system) used so far by `roots` and their descendants, the exited ones
    included (a parent's cutime / cstime holds the children it reaped): read before and after a
    run, the difference is what the run cost the server, however busy the rest of the machine."""
    ticks = 0
    for pid in _process_tree(roots):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


# The scored row's event type: the same 50 rules plus two reading velocity aggregates (the
# target's "scoring and two velocity aggregates"), so the unscored row pays for no history.


def lua_script(*, method: str, path: str, bodies: list[str], key: str, delay_ms: int) -> str:
    quoted = ",\n".join(f"[==[{body}]==]" for body in bodies) if bodies else ""
    run = f"{time.time_ns()}-{secrets.token_hex(4)}"
    return f"""
local bodies = {{ {quoted} }}
local counter = 0
local created = 0
local prefix = "{run}"
function setup(thread)
  created = created + 1
  thread:set("tid", created)
end
function init(args)
  prefix = prefix .. "-" .. tostring(tid) .. "-"
end
function request()
  counter = counter + 1
  local headers = {{}}
  headers["Authorization"] = "Api-Key {key}"
  headers["Idempotency-Key"] = prefix .. counter
  local body = nil
  if #bodies > 0 then
    headers["Content-Type"] = "application/json"
    body = bodies[(counter % #bodies) + 1]
  end
  return wrk.format("{method}", "{path}", headers, body)
end
{"function delay() return " + str(delay_ms) + " end" if delay_ms else ""}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {{"requests": %d, "duration_us": %d, "non2xx": %d, ' ..
    '"socket_errors": %d, "p50": %d, "p90": %d, "p95": %d, "p99": %d, "mean": %f, "max": %d}}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.mean, latency.max))
end
"""


def run_wrk(url: str, script: str, *, connections: int, seconds: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        completed = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                handle.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    found = re.search(r"WRKJSON (\{.*\})", completed.stdout)
    assert found, completed.stdout + completed.stderr
    result = json.loads(found[1])
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def warm_up(url: str, script: str, *, connections: int) -> None:
    """Load the endpoint until no request of a 3-second run waited seconds (for a worker still
    loading something), at most about two minutes."""
    for _attempt in range(40):
        result = run_wrk(url, script, connections=connections, seconds=3)
        if result["requests"] and result["max"] < 3_000_000:
            return
