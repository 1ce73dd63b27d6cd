import pytest
from tqdm import tqdm


@pytest.fixture
def progress_totals(monkeypatch):
    """`progress_totals(module)`: that module's progress bars record their total at every refresh in the list it
    returns."""

    def record(module):
        totals = []

        class Recording(tqdm):
            def refresh(self, *args, **kwargs):
                totals.append(self.total)
                return super().refresh(*args, **kwargs)

        monkeypatch.setattr(module, "tqdm", Recording)
        return totals

    return record
