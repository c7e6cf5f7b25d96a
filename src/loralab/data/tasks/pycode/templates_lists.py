"""Code templates over lists of integers."""

from __future__ import annotations

import itertools
import operator
import random
from collections import Counter

from loralab.data.tasks.pycode.inputs import list_cases
from loralab.data.tasks.pycode.spec import FunctionSpec, case_rng


def divisible_total(rng: random.Random) -> FunctionSpec:
    k, total = rng.randint(2, 9), rng.random() < 0.5
    key = f"divisible_total:{k}:{total}"
    what = "sum" if total else "number"
    return FunctionSpec(
        key=key,
        name=f"{'sum' if total else 'count'}_divisible_by_{k}",
        signature="(nums: list[int]) -> int",
        summary=f"Return the {what} of the elements of nums that are divisible by {k}.",
        body=f"    return {'sum' if total else 'len'}([x for x in nums if x % {k} == 0])\n",
        reference=lambda nums: (sum if total else len)(list(filter(lambda x: not x % k, nums))),
        cases=list_cases(case_rng(key)),
    )


def scale_shift(rng: random.Random) -> FunctionSpec:
    factor, offset = rng.randint(2, 9), rng.randint(-5, 5)
    key = f"scale_shift:{factor}:{offset}"
    shift = f" + {offset}" if offset > 0 else f" - {-offset}" if offset < 0 else ""
    return FunctionSpec(
        key=key,
        name="scale_and_shift",
        signature="(nums: list[int]) -> list[int]",
        summary=f"Return a new list where each element x of nums is replaced by x * {factor}{shift}.",
        body=f"    return [x * {factor}{shift} for x in nums]\n",
        reference=lambda nums: list(map(lambda x: factor * x + offset, nums)),
        cases=list_cases(case_rng(key)),
    )


def keep_beyond(rng: random.Random) -> FunctionSpec:
    threshold, greater = rng.randint(-10, 20), rng.random() < 0.5
    key = f"keep_beyond:{threshold}:{greater}"
    relation, operator = ("greater", ">") if greater else ("less", "<")
    return FunctionSpec(
        key=key,
        name=f"keep_{relation}_than",
        signature="(nums: list[int]) -> list[int]",
        summary=f"Return the elements of nums that are strictly {relation} than {threshold}, in their original order.",
        body=f"    return [x for x in nums if x {operator} {threshold}]\n",
        reference=lambda nums: [x for x in nums if (x - threshold) * (1 if greater else -1) > 0],
        cases=list_cases(case_rng(key), low=-15, high=25),
    )


def running(rng: random.Random) -> FunctionSpec:
    op = rng.choice(("max", "min", "sum"))
    key = f"running:{op}"
    combine = {"max": "max(current, x)", "min": "min(current, x)", "sum": "current + x"}[op]

    fold = {"max": max, "min": min, "sum": operator.add}[op]
    body = (
        "    result = []\n"
        "    for i, x in enumerate(nums):\n"
        f"        current = x if i == 0 else {combine}\n"
        "        result.append(current)\n"
        "    return result\n"
    )
    return FunctionSpec(
        key=key,
        name=f"running_{op}",
        signature="(nums: list[int]) -> list[int]",
        summary=f"Return a list whose i-th element is the {op} of nums[0], ..., nums[i].",
        body=body,
        reference=lambda nums: list(itertools.accumulate(nums, fold)),
        cases=list_cases(case_rng(key)),
    )


def kth_largest(rng: random.Random) -> FunctionSpec:
    k = rng.randint(1, 4)
    key = f"kth_largest:{k}"
    return FunctionSpec(
        key=key,
        name=f"distinct_largest_{k}",
        signature="(nums: list[int]) -> int | None",
        summary=(
            f"Return the number {k} largest distinct value of nums (number 1 is the maximum), "
            f"or None if nums has fewer than {k} distinct values."
        ),
        body=f"    values = sorted(set(nums), reverse=True)\n    return values[{k - 1}] if len(values) >= {k} else None\n",
        reference=lambda nums: sorted(set(nums))[-k] if len(set(nums)) >= k else None,
        cases=list_cases(case_rng(key), low=-5, high=5),
    )


def step_differences(rng: random.Random) -> FunctionSpec:
    k = rng.randint(1, 4)
    key = f"step_differences:{k}"
    return FunctionSpec(
        key=key,
        name=f"differences_at_distance_{k}",
        signature="(nums: list[int]) -> list[int]",
        summary=f"Return [nums[i + {k}] - nums[i]] for every i where nums[i + {k}] exists.",
        body=f"    return [nums[i + {k}] - nums[i] for i in range(len(nums) - {k})]\n",
        reference=lambda nums: [b - a for a, b in zip(nums, nums[k:])],
        cases=list_cases(case_rng(key)),
    )


def rotate(rng: random.Random) -> FunctionSpec:
    k, left = rng.randint(1, 9), rng.random() < 0.5
    key = f"rotate:{k}:{left}"
    direction = "left" if left else "right"
    shift = f"{k} % len(nums)" if left else f"-{k} % len(nums)"

    def reference(nums: list[int]) -> list[int]:
        for _ in range(k if nums else 0):
            nums = nums[1:] + nums[:1] if left else nums[-1:] + nums[:-1]
        return nums

    return FunctionSpec(
        key=key,
        name=f"rotate_{direction}_by_{k}",
        signature="(nums: list[int]) -> list[int]",
        summary=f"Return nums rotated {k} places to the {direction} (an empty list stays empty).",
        body=f"    if not nums:\n        return []\n    shift = {shift}\n    return nums[shift:] + nums[:shift]\n",
        reference=reference,
        cases=list_cases(case_rng(key)),
    )


def every_kth(rng: random.Random) -> FunctionSpec:
    k = rng.randint(2, 5)
    start = rng.randint(0, k - 1)
    key = f"every_kth:{k}:{start}"
    return FunctionSpec(
        key=key,
        name=f"every_{k}th_from_{start}",
        signature="(nums: list[int]) -> list[int]",
        summary=f"Return the elements of nums at indexes {start}, {start + k}, {start + 2 * k}, and so on.",
        body=f"    return nums[{start}::{k}]\n",
        reference=lambda nums: [x for i, x in enumerate(nums) if i >= start and (i - start) % k == 0],
        cases=list_cases(case_rng(key), max_len=14),
    )


def repeated(rng: random.Random) -> FunctionSpec:
    k = rng.randint(2, 4)
    key = f"repeated:{k}"
    body = (
        "    result = []\n"
        "    for x in nums:\n"
        f"        if nums.count(x) >= {k} and x not in result:\n"
        "            result.append(x)\n"
        "    return result\n"
    )
    return FunctionSpec(
        key=key,
        name=f"appearing_{k}_times",
        signature="(nums: list[int]) -> list[int]",
        summary=f"Return each value that appears at least {k} times in nums, once, in order of first appearance.",
        body=body,
        reference=lambda nums: [x for x, n in Counter(nums).items() if n >= k],
        cases=list_cases(case_rng(key), low=0, high=4, max_len=12),
    )


TEMPLATES = (divisible_total, scale_shift, keep_beyond, running, kth_largest, step_differences, rotate, every_kth, repeated)
