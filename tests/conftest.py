from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_tgi import FakeTGI, serve


@pytest.fixture
def fake_tgi() -> Iterator[FakeTGI]:
    """A fake TGI under huggingface_hub; set `fake_tgi.reply` to script its answers."""
    with serve(FakeTGI()) as fake:
        yield fake
