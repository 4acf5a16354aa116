"""kombu's filesystem transport, made safe for a producer and a consumer running at once.

kombu writes a message file in place (create, then write), and its consumer moves and reads any
`*.msg` file it lists: a file caught between the two reads as empty, `json.loads` fails and the
worker's consumer loop dies (seen under load: a worker publishing simulator callbacks while it
consumes). Writing under a temporary name and renaming it into place makes each message appear
whole or not at all. `patch()` applies this to the current process; `python -m
tests.support.atomic_filesystem_broker <celery args>` runs Celery with it.
"""

import os
import sys
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps


def _atomic_put(self: Any, queue: str, payload: Any, **kwargs: Any) -> None:
    name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
    final = os.path.join(self.data_folder_out, name)
    temporary = os.path.join(self.data_folder_out, f".{name}.partial")
    try:
        with open(temporary, "wb") as handle:
            handle.write(dumps(payload).encode())
        os.replace(temporary, final)  # atomic within one directory
    except OSError as error:
        raise ChannelError(f"Cannot add file {final!r} to directory") from error


def patch() -> None:
    filesystem.Channel._put = _atomic_put


if __name__ == "__main__":
    patch()
    from celery.__main__ import main

    sys.argv = ["celery", *sys.argv[1:]]
    main()
