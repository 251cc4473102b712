"""adamlib.lab.splits: the test set comes out of the validation set, and nothing else changes."""

import pytest
import torch

from adamlib.lab.splits import hold_out_test
from adamlib.lab.tasks import digits_split


def test_validation_set_is_split_in_two_and_training_set_is_untouched():
    data = digits_split()
    study, test = hold_out_test(data, fraction=0.4, seed=3)
    assert study.X_train is data.X_train and study.y_train is data.y_train
    assert len(study.y_val) + len(test.y) == len(data.y_val) and len(test.y) == round(0.4 * len(data.y_val))
    both = torch.cat([study.X_val, test.X])
    # the two parts are a permutation of the validation set: same rows, none twice
    key = lambda X: sorted(map(tuple, X.round(decimals=4).tolist()))  # noqa: E731
    assert key(both) == key(data.X_val)
    assert sorted(torch.cat([study.y_val, test.y]).tolist()) == sorted(data.y_val.tolist())


def test_split_is_seeded_and_digits_split_is_unchanged():
    a, ta = hold_out_test(digits_split(), seed=1)
    b, tb = hold_out_test(digits_split(), seed=1)
    _, tc = hold_out_test(digits_split(), seed=2)
    assert torch.equal(ta.X, tb.X) and torch.equal(a.y_val, b.y_val) and not torch.equal(ta.X, tc.X)
    assert len(digits_split().y_val) == round(0.3 * 1797)


@pytest.mark.parametrize("kwargs, error, match", [(dict(fraction=0.0), ValueError, "fraction"),
                                                  (dict(fraction=1.0), ValueError, "fraction"),
                                                  (dict(fraction=1e-6), ValueError, "empty"),
                                                  (dict(seed=-1), ValueError, "seed")])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        hold_out_test(digits_split(), **kwargs)
    with pytest.raises(TypeError, match="data"):
        hold_out_test((1, 2))
