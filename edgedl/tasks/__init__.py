"""The host's half of every task (``registry``: loss, data, decoding parameters), the data a task comes to
(``prepared``), and the tasks' own pieces: digit canvases, CenterNet targets, contrastive embeddings."""
from .prepared import CALIBRATION_SAMPLES, CHECK_SAMPLES, Prepared, content_hash, too_few
from .registry import HOST_TASKS, HostTask, generic, host_task, normalized, prepare, task_of, with_labels

__all__ = ["CALIBRATION_SAMPLES", "CHECK_SAMPLES", "HOST_TASKS", "HostTask", "Prepared", "content_hash", "generic",
           "host_task", "normalized", "prepare", "task_of", "too_few", "with_labels"]
