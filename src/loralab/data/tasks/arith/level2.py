"""Level 2: two steps (shopping, change, sharing, rates); one line per step plus ``#### N``."""

from __future__ import annotations

import random

from loralab.data.tasks.arith.vocab import NAMES, RATES, THINGS
from loralab.data.tasks.arith.work import Worked, calc, thing


def packs_then_give(rng: random.Random) -> Worked:
    name, (_, things) = rng.choice(NAMES), thing(rng)
    packs, per = rng.randint(2, 9), rng.randint(3, 12)
    total, first = calc(packs, "*", per)
    given = rng.randint(1, total - 1)
    left, second = calc(total, "-", given)
    question = (
        f"{name} buys {packs} packs of {things} with {per} in each pack, then gives away {given}. "
        f"How many {things} does {name} have left?"
    )
    return Worked(question, (f"{name} buys {first} {things}.", f"{name} has {second} {things} left."), left)


def shopping_total(rng: random.Random) -> Worked:
    name = rng.choice(NAMES)
    (_, things), (extra, _) = rng.sample(THINGS, 2)
    count, cost, extra_cost = rng.randint(2, 9), rng.randint(2, 12), rng.randint(3, 20)
    subtotal, first = calc(count, "*", cost)
    total, second = calc(subtotal, "+", extra_cost)
    question = (
        f"{name} buys {count} {things} for ${cost} each and one {extra} for ${extra_cost}. "
        f"How many dollars does {name} spend?"
    )
    return Worked(question, (f"The {things} cost {first} dollars.", f"{name} spends {second} dollars."), total)


def change(rng: random.Random) -> Worked:
    name, (_, things) = rng.choice(NAMES), thing(rng)
    count, cost = rng.randint(2, 9), rng.randint(2, 10)
    spent, first = calc(count, "*", cost)
    bill = rng.choice([bill for bill in (20, 50, 100) if bill > spent])
    rest, second = calc(bill, "-", spent)
    question = (
        f"{name} buys {count} {things} for ${cost} each and pays with a ${bill} bill. "
        f"How many dollars of change does {name} get?"
    )
    return Worked(question, (f"The {things} cost {first} dollars.", f"The change is {second} dollars."), rest)


def share_boxes(rng: random.Random) -> Worked:
    name, (_, things) = rng.choice(NAMES), thing(rng)
    friends, each = rng.randint(2, 6), rng.randint(2, 12)
    everything = friends * each
    boxes = rng.choice([boxes for boxes in range(2, 10) if everything % boxes == 0 and everything // boxes >= 2])
    total, first = calc(boxes, "*", everything // boxes)
    share_each, second = calc(total, "/", friends)
    question = (
        f"{name} has {boxes} boxes with {everything // boxes} {things} in each box and shares them equally "
        f"among {friends} friends. How many {things} does each friend get?"
    )
    return Worked(question, (f"{name} has {first} {things}.", f"Each friend gets {second} {things}."), share_each)


def two_days(rng: random.Random) -> Worked:
    name, (verb, unit, _) = rng.choice(NAMES), rng.choice(RATES)
    monday, tuesday, minutes = rng.randint(2, 15), rng.randint(2, 15), rng.randint(2, 6)
    total, first = calc(monday, "+", tuesday)
    time, second = calc(total, "*", minutes)
    question = (
        f"{name} {verb} {monday} {unit} on Monday and {tuesday} {unit} on Tuesday. "
        f"Each of the {unit} takes {minutes} minutes. How many minutes does this take {name}?"
    )
    return Worked(question, (f"{name} {verb} {first} {unit}.", f"This takes {second} minutes."), time)


def trip_left(rng: random.Random) -> Worked:
    speed, hours = rng.randint(20, 90), rng.randint(2, 5)
    done, first = calc(speed, "*", hours)
    trip = done + rng.randint(10, 200)
    left, second = calc(trip, "-", done)
    question = (
        f"A train on a {trip} km trip travels {speed} km every hour. "
        f"How many km of the trip are left after {hours} hours?"
    )
    return Worked(question, (f"The train travels {first} km.", f"{second} km are left."), left)


TEMPLATES = (packs_then_give, shopping_total, change, share_boxes, two_days, trip_left)
