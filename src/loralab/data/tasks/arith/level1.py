"""Level 1: one step with small numbers; solutions are one line plus ``#### N``."""

from __future__ import annotations

import random

from loralab.data.tasks.arith.vocab import NAMES, RATES
from loralab.data.tasks.arith.work import Worked, calc, thing, two_names


def buy_more(rng: random.Random) -> Worked:
    name, (_, things) = rng.choice(NAMES), thing(rng)
    a, b = rng.randint(2, 20), rng.randint(2, 20)
    c, eq = calc(a, "+", b)
    question = f"{name} has {a} {things}. {name} buys {b} more. How many {things} does {name} have now?"
    return Worked(question, (f"{name} has {eq} {things} now.",), c)


def give_away(rng: random.Random) -> Worked:
    name, (_, things) = rng.choice(NAMES), thing(rng)
    a = rng.randint(5, 20)
    b = rng.randint(1, a - 1)
    c, eq = calc(a, "-", b)
    question = f"{name} has {a} {things} and gives {b} to a friend. How many {things} does {name} have left?"
    return Worked(question, (f"{name} has {eq} {things} left.",), c)


def bags(rng: random.Random) -> Worked:
    name, (_, things) = rng.choice(NAMES), thing(rng)
    a, b = rng.randint(2, 9), rng.randint(2, 10)
    c, eq = calc(a, "*", b)
    question = f"{name} buys {a} bags with {b} {things} in each bag. How many {things} does {name} buy?"
    return Worked(question, (f"{name} buys {eq} {things}.",), c)


def share(rng: random.Random) -> Worked:
    name, (_, things) = rng.choice(NAMES), thing(rng)
    friends, each = rng.randint(2, 9), rng.randint(2, 10)
    c, eq = calc(friends * each, "/", friends)
    question = (
        f"{name} shares {friends * each} {things} equally among {friends} friends. "
        f"How many {things} does each friend get?"
    )
    return Worked(question, (f"Each friend gets {eq} {things}.",), c)


def price(rng: random.Random) -> Worked:
    single, plural = thing(rng)
    cost, count = rng.randint(2, 9), rng.randint(2, 10)
    c, eq = calc(count, "*", cost)
    question = f"One {single} costs ${cost}. How many dollars do {count} {plural} cost?"
    return Worked(question, (f"{count} {plural} cost {eq} dollars.",), c)


def rate(rng: random.Random) -> Worked:
    name, (verb, unit, per) = rng.choice(NAMES), rng.choice(RATES)
    a, b = rng.randint(2, 10), rng.randint(2, 9)
    c, eq = calc(a, "*", b)
    question = f"{name} {verb} {a} {unit} each {per}. How many {unit} does {name} {verb[:-1]} in {b} {per}s?"
    return Worked(question, (f"{name} {verb} {eq} {unit}.",), c)


def together(rng: random.Random) -> Worked:
    (first, second), (_, things) = two_names(rng), thing(rng)
    a, b = rng.randint(2, 20), rng.randint(2, 20)
    c, eq = calc(a, "+", b)
    question = f"{first} has {a} {things} and {second} has {b} {things}. How many {things} do they have together?"
    return Worked(question, (f"Together they have {eq} {things}.",), c)


def how_many_more(rng: random.Random) -> Worked:
    (first, second), (_, things) = two_names(rng), thing(rng)
    b = rng.randint(2, 15)
    a = rng.randint(b + 1, 25)
    c, eq = calc(a, "-", b)
    question = (
        f"{first} has {a} {things} and {second} has {b} {things}. "
        f"How many more {things} does {first} have than {second}?"
    )
    return Worked(question, (f"{first} has {eq} more {things}.",), c)


TEMPLATES = (buy_more, give_away, bags, share, price, rate, together, how_many_more)
