"""The local stack writes what functions print to the function log, even from their threads."""

import io
import threading
from concurrent.futures import ThreadPoolExecutor

from local.api_server import functions_print_to


def test_a_functions_threads_print_to_its_log_and_other_threads_do_not(capsys) -> None:
    log = io.StringIO()
    with functions_print_to(log):
        print("from the function")
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda n: print(f"from its thread {n}"), range(2)))
    outside = threading.Thread(target=lambda: print("from the demo"))
    outside.start()
    outside.join()

    assert sorted(log.getvalue().splitlines()) == ["from its thread 0", "from its thread 1", "from the function"]
    assert "from the demo" in capsys.readouterr().out
