"""Preference losses against values computed by hand in float64 (math module), and their gradients."""

import math

import pytest
import torch

from loralab.eval.preference_scores import preference_loss, sequence_log_probs

PAIRS = [(-3.0, -5.0, -3.5, -4.0), (-10.0, -2.0, -9.0, -2.5), (-1.0, -1.0, -1.0, -1.0)]  # π_w, π_l, ρ_w, ρ_l


def _log_sigmoid(z):
    return -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))


def _by_hand(pw, pl, rw, rl, beta, loss, eps):
    h = beta * ((pw - rw) - (pl - rl))
    if loss == "sigmoid":
        return -(1 - eps) * _log_sigmoid(h) - eps * _log_sigmoid(-h)
    return (h / beta - 1 / (2 * beta)) ** 2


@pytest.mark.parametrize("loss, eps", [("sigmoid", 0.0), ("sigmoid", 0.2), ("ipo", 0.0)])
@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_loss_and_rewards_match_hand_values(loss, eps, beta):
    tensors = [torch.tensor(column, dtype=torch.float64) for column in zip(*PAIRS)]
    terms = preference_loss(*tensors, beta=beta, loss=loss, label_smoothing=eps)
    expected = [_by_hand(*pair, beta, loss, eps) for pair in PAIRS]
    assert terms.loss.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert terms.chosen_reward.tolist() == pytest.approx([beta * (pw - rw) for pw, _, rw, _ in PAIRS], rel=1e-12)
    assert terms.accuracy.tolist() == [1.0, 0.0, 0.0]  # pair 1: +0.5 vs −1; pair 2: −1 vs +0.5; pair 3: a tie is no win


def test_policy_equal_to_reference_gives_log_2():
    same = torch.tensor([-4.0, -7.5], dtype=torch.float64)
    terms = preference_loss(same, same - 1, same, same - 1, beta=0.1)
    assert terms.loss.tolist() == pytest.approx([math.log(2)] * 2, rel=1e-15)
    assert terms.margin.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("loss, eps", [("sigmoid", 0.0), ("sigmoid", 0.3), ("ipo", 0.0)])
def test_gradient_with_respect_to_the_policy_matches_hand_derivative(loss, eps):
    beta, (pw, pl, rw, rl) = 0.3, PAIRS[0]
    policy = torch.tensor([pw, pl], dtype=torch.float64, requires_grad=True)
    terms = preference_loss(policy[:1], policy[1:], torch.tensor([rw], dtype=torch.float64),
                            torch.tensor([rl], dtype=torch.float64), beta=beta, loss=loss, label_smoothing=eps)  # fmt: skip
    terms.loss.sum().backward()
    h = beta * ((pw - rw) - (pl - rl))
    sigma = 1 / (1 + math.exp(-h))
    if loss == "sigmoid":  # d/dh of −(1−ε) log σ(h) − ε log σ(−h) = −(1−ε)(1−σ) + εσ
        d_h = -(1 - eps) * (1 - sigma) + eps * sigma
        expected = [d_h * beta, -d_h * beta]
    else:  # d/dπ_w (h/β − 1/(2β))² = 2 (h/β − 1/(2β))
        d = 2 * (h / beta - 1 / (2 * beta))
        expected = [d, -d]
    assert policy.grad.tolist() == pytest.approx(expected, rel=1e-12)


def test_sequence_log_probs_sum_only_labelled_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7, dtype=torch.float64)
    labels = torch.tensor([[-100, -100, 3, 4, 1], [-100, 2, 2, -100, -100]])
    sums, counts = sequence_log_probs(logits, labels)
    expected = []
    for b in range(2):
        total = 0.0
        for t in range(4):
            y = int(labels[b, t + 1])
            if y != -100:
                row = logits[b, t].tolist()
                total += row[y] - math.log(sum(math.exp(v) for v in row))
        expected.append(total)
    assert sums.tolist() == pytest.approx(expected, rel=1e-12)
    assert counts.tolist() == [3, 2]
