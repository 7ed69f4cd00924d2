"""The host's half of the task registry matches the device's."""
from runtime.tasks import TASKS


def test_every_task_the_runtime_knows_has_a_host_half():
    from edgedl.tasks import HOST_TASKS, host_task

    assert set(HOST_TASKS) == set(TASKS)
    assert host_task("classification").normalized_inputs and not host_task("denoising").normalized_inputs
    assert host_task("generic").prepare is None  # its inputs are read for the model it comes with
