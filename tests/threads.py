"""Running test workers on threads, with their exceptions reported."""

import threading


def run_threads(worker, count: int) -> None:
    """Run worker(0..count-1) on threads at once; fail if any raised or hung."""
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            worker(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=guarded, args=(index,)) for index in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in pool)
