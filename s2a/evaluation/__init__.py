"""The evaluation harness behind `s2a eval` and `s2a bench`.

The S2A paper's three experiments (GSM-IC, TriviaQA with opinions, arguments with
opinions): the baselines, the S2A variants and the peers, scored, tabulated and plotted;
and the cost of each method.
"""

from __future__ import annotations

from s2a.evaluation.methods import METHODS, ChatModel, Outcome, Reply, Step, TGIChat, run_method
from s2a.evaluation.runner import ExampleResult, RunInfo, evaluate, load_results
from s2a.evaluation.task import Task
from s2a.evaluation.tasks import TASKS

__all__ = [
    "METHODS",
    "TASKS",
    "ChatModel",
    "ExampleResult",
    "Outcome",
    "Reply",
    "RunInfo",
    "Step",
    "TGIChat",
    "Task",
    "evaluate",
    "load_results",
    "run_method",
]
