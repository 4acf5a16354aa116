from concurrent.futures import ThreadPoolExecutor

from kombu import Connection

from core.broker import STAGING_FOLDER


def test_it_delivers_every_message_whole_while_producers_and_a_consumer_race(tmp_path):
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        # kombu's default is "control" relative to the working directory: the repository.
        "control_folder": str(tmp_path / "control"),
        "polling_interval": 0.01,
    }
    url, transport = "filesystem://", "core.broker:AtomicFilesystemTransport"

    def produce(start: int) -> None:
        with Connection(url, transport=transport, transport_options=options) as connection:
            queue = connection.SimpleQueue("race")
            for number in range(start, start + 50):
                queue.put({"n": number, "padding": "x" * 2000})
            queue.close()

    received = []
    with Connection(url, transport=transport, transport_options=options) as connection:
        queue = connection.SimpleQueue("race")
        with ThreadPoolExecutor(max_workers=4) as pool:
            producers = [pool.submit(produce, start) for start in (0, 50, 100, 150)]
            while len(received) < 200:
                message = queue.get(timeout=10)
                received.append(message.payload["n"])
                message.ack()
            for producer in producers:
                producer.result()
        queue.close()

    assert sorted(received) == list(range(200))
    assert list((tmp_path / STAGING_FOLDER).iterdir()) == []
