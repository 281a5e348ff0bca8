"""worker.processes: the command line it takes, and a node name of its own for each worker."""

import pytest

from labctl import app_commands
from worker.processes import _parse, node_name

COMMAND = app_commands.fill(app_commands.WORKER_COMMAND, processes="3", pool="threads",
                            concurrency="8", queues=app_commands.queues())


def test_it_reads_the_lab_s_one_worker_command_line():
    processes, celery = _parse(COMMAND[3:])
    assert processes == 3
    assert celery[0] == "celery" and celery[celery.index("--pool") + 1] == "threads"


def test_each_worker_gets_a_node_name_of_its_own():
    _, celery = _parse(COMMAND[3:])
    names = {node_name(celery, i)[celery.index("--hostname") + 1] for i in (1, 2, 3)}
    assert names == {"worker-1@%h", "worker-2@%h", "worker-3@%h"}
    assert node_name(celery, 1)[:celery.index("--hostname")] == celery[:celery.index("--hostname")]


@pytest.mark.parametrize("argv", [["--processes", "0", "--", "celery", "worker"],
                                  ["--processes", "2", "--", "uvicorn", "api.main:app"]])
def test_anything_but_a_celery_worker_is_refused(argv):
    with pytest.raises(SystemExit):
        _parse(argv)
