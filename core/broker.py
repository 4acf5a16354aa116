"""kombu's filesystem transport, made safe for concurrent producers and consumers.

kombu writes a message file in place (open, lock, write) while a consumer moves and reads files
without taking the lock, so a worker can read a half-written (empty) file and die on a
JSONDecodeError: seen with beat publishing every second. Writing the file under a staging name
and renaming it into the queue folder makes each message appear whole, atomically.
"""

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

STAGING_FOLDER = ".staging"  # its name has no ".<queue>.msg" suffix, so consumers skip it


class AtomicFilesystemChannel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        folder = Path(self.data_folder_out)
        staging = folder / STAGING_FOLDER
        staging.mkdir(exist_ok=True)
        staged = staging / name
        try:
            staged.write_bytes(str_to_bytes(dumps(payload)))
            os.replace(staged, folder / name)
        except OSError as error:
            raise ChannelError(f"Cannot add {name!r} to {folder}") from error


class AtomicFilesystemTransport(filesystem.Transport):
    Channel = AtomicFilesystemChannel
