"""Code templates over single integers."""

from __future__ import annotations

import random

from loralab.data.tasks.pycode.spec import FunctionSpec, case_rng

FIZZ_WORDS = (("Fizz", "Buzz"), ("Ping", "Pong"), ("Foo", "Bar"), ("Tic", "Tac"))


def sum_multiples(rng: random.Random) -> FunctionSpec:
    k, total = rng.randint(2, 12), rng.random() < 0.5
    key = f"sum_multiples:{k}:{total}"
    cases = case_rng(key)
    what = "sum" if total else "number"
    return FunctionSpec(
        key=key,
        name=f"{'sum' if total else 'count'}_multiples_of_{k}",
        signature="(n: int) -> int",
        summary=f"Return the {what} of the positive multiples of {k} that are smaller than n.",
        body=f"    return {'sum' if total else 'len'}(range({k}, n, {k}))\n",
        reference=lambda n: (sum if total else len)([i for i in range(1, max(n, 1)) if i % k == 0]),
        cases=((cases.randint(3 * k, 60),), (0,), (k,), (k + 1,), (cases.randint(60, 500),)),
    )


def clamp(rng: random.Random) -> FunctionSpec:
    low = rng.randint(-10, 10)
    high = low + rng.randint(1, 20)
    key = f"clamp:{low}:{high}"
    cases = case_rng(key)
    return FunctionSpec(
        key=key,
        name="clamp",
        signature="(x: int) -> int",
        summary=f"Return x limited to the range from {low} to {high}, inclusive.",
        body=f"    return max({low}, min({high}, x))\n",
        reference=lambda x: low if x < low else high if x > high else x,
        cases=((high + cases.randint(1, 9),), (low - cases.randint(1, 9),), (low,), (high,), ((low + high) // 2,)),
    )


def digit_sum_above(rng: random.Random) -> FunctionSpec:
    threshold, total = rng.randint(0, 8), rng.random() < 0.5
    key = f"digit_sum_above:{threshold}:{total}"
    cases = case_rng(key)
    what = "sum" if total else "number"
    kept = f"[int(c) for c in str(abs(n)) if int(c) > {threshold}]"

    def reference(n: int) -> int:
        digits, n = [], abs(n)
        while n:
            n, digit = divmod(n, 10)
            digits.append(digit)
        kept_digits = [digit for digit in digits if digit > threshold]
        return sum(kept_digits) if total else len(kept_digits)

    return FunctionSpec(
        key=key,
        name=f"{'sum' if total else 'count'}_digits_above_{threshold}",
        signature="(n: int) -> int",
        summary=f"Return the {what} of the digits of n (ignoring its sign) that are greater than {threshold}.",
        body=f"    return {'sum' if total else 'len'}({kept})\n",
        reference=reference,
        cases=((cases.randint(1000, 99999),), (0,), (-cases.randint(10, 9999),), (9,), (cases.randint(10**5, 10**8),)),
    )


def fizz_label(rng: random.Random) -> FunctionSpec:
    a, b = sorted(rng.sample(range(2, 8), 2))
    first, second = rng.choice(FIZZ_WORDS)
    key = f"fizz_label:{a}:{b}:{first}{second}"
    cases = case_rng(key)
    body = (
        f"    if n % {a} == 0 and n % {b} == 0:\n        return {first + second!r}\n"
        f"    if n % {a} == 0:\n        return {first!r}\n"
        f"    if n % {b} == 0:\n        return {second!r}\n"
        "    return str(n)\n"
    )
    return FunctionSpec(
        key=key,
        name=f"{first.lower()}_{second.lower()}",
        signature="(n: int) -> str",
        summary=(
            f"Return {first + second!r} if n is divisible by both {a} and {b}, {first!r} if only by {a}, "
            f"{second!r} if only by {b}, and n as a string otherwise."
        ),
        body=body,
        reference=lambda n: (first * (n % a == 0) + second * (n % b == 0)) or str(n),
        cases=((a * b * cases.randint(1, 5),), (a,), (b,), (a * b + 1,), (cases.randint(1, 100),), (cases.randint(1, 100),)),
    )


def power_sum(rng: random.Random) -> FunctionSpec:
    power, parity = rng.randint(1, 4), rng.choice(("all", "odd", "even"))
    key = f"power_sum:{power}:{parity}"
    cases = case_rng(key)
    numbers = {"all": "the integers", "odd": "the odd integers", "even": "the even integers"}[parity]
    start, step = {"all": (1, 1), "odd": (1, 2), "even": (2, 2)}[parity]
    remainder = {"all": None, "odd": 1, "even": 0}[parity]
    return FunctionSpec(
        key=key,
        name=f"sum_of_powers_{parity}",
        signature="(n: int) -> int",
        summary=f"Return the sum of i ** {power} over {numbers} i from 1 to n, inclusive (0 when n < 1).",
        body=f"    return sum(i ** {power} for i in range({start}, n + 1, {step}))\n",
        reference=lambda n: sum(i**power for i in range(1, n + 1) if remainder is None or i % 2 == remainder),
        cases=((cases.randint(4, 12),), (0,), (1,), (2,), (cases.randint(13, 40),)),
    )


TEMPLATES = (sum_multiples, clamp, digit_sum_above, fizz_label, power_sum)
