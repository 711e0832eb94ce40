from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_tgi import FakeTGI, serve
from tests.ledger import summary


@pytest.fixture
def fake_tgi() -> Iterator[FakeTGI]:
    """A fake TGI under huggingface_hub; set `fake_tgi.reply` to script its answers."""
    with serve(FakeTGI()) as fake:
        yield fake


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The reliability ledger (tests/ledger.py): what the fault, input and load tests tried."""
    lines = summary()
    if lines:
        terminalreporter.write_sep("-", "s2a reliability ledger")
        for line in lines:
            terminalreporter.write_line(line)
