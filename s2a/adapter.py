"""The seam an adapter builds on: what `langchain_s2a` and `llamaindex_s2a` import from the core.

An adapter supplies one thing, the model call: one request in, one `Reply` out. The core plans
the step and reads the replies, with no I/O:

    plan = plan_step(S2AInput(...), S2AConfig(...), window_tokens=...)   # a text
    result = run_plan(plan, call, retry)           # S2AResult; or: await arun_plan(plan, acall, retry)

    plan = s2a.selection.plan_selection(texts, query, config, ...)       # retrieved documents
    selected = run_plan(plan, call, retry)         # s2a.selection.Selected

`call` gets a request (`ModelCall`: its `messages`, the reply's `grammar`, `top_logprobs`,
`max_new_tokens`) and returns a `Reply`: the text, and where the backend reports them its
usage (`token_usage` reads an OpenAI-shaped `usage`), whether it stopped at its token limit,
and its tokens' alternatives (`token_logprobs` reads OpenAI's `logprobs.content`). A call that
raises is retried per `retry`; one that fails for good falls back per the config's policy.

Everything here is public and kept stable with the package; the modules it comes from are not.
"""

from __future__ import annotations

from s2a._faults import redact
from s2a._lazy import lazy_attribute
from s2a._steps import ModelCall, Outcome, Plan, Reply, arun_plan, run_plan
from s2a._types import ScoredCalls, TokenLogprob, token_logprobs, token_usage
from s2a._windows import StepPlan, plan_step

__all__ = [
    "ModelCall",
    "Outcome",
    "Plan",
    "Reply",
    "ScoredCalls",
    "StepPlan",
    "TokenLogprob",
    "arun_plan",
    "lazy_attribute",
    "plan_step",
    "redact",
    "run_plan",
    "token_logprobs",
    "token_usage",
]
