"""Which tokens an example trains on (imported as ``labelled_runs`` by the data tests)."""

from loralab.data import IGNORE_INDEX


def trained_runs(example) -> list[list[int]]:
    """Maximal runs of consecutive trained tokens (each label must equal its token)."""
    runs, current = [], []
    for token, label in zip(example.input_ids, example.labels):
        if label == IGNORE_INDEX:
            if current:
                runs.append(current)
            current = []
        else:
            assert label == token
            current.append(token)
    return runs + ([current] if current else [])
