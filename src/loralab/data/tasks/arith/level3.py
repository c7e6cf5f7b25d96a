"""Level 3: three or four steps combining shopping, change, rates and sharing."""

from __future__ import annotations

import random

from loralab.data.tasks.arith.vocab import BAKED, NAMES, THINGS
from loralab.data.tasks.arith.work import Worked, calc, thing, two_names


def two_items_change(rng: random.Random) -> Worked:
    name = rng.choice(NAMES)
    (_, first_things), (_, second_things) = rng.sample(THINGS, 2)
    a, p, b, q = rng.randint(2, 6), rng.randint(2, 9), rng.randint(2, 6), rng.randint(2, 9)
    x, line1 = calc(a, "*", p)
    y, line2 = calc(b, "*", q)
    spent, line3 = calc(x, "+", y)
    bill = rng.choice([bill for bill in (50, 100, 200) if bill > spent])
    rest, line4 = calc(bill, "-", spent)
    question = (
        f"{name} buys {a} {first_things} for ${p} each and {b} {second_things} for ${q} each, "
        f"and pays with a ${bill} bill. How many dollars of change does {name} get?"
    )
    lines = (
        f"The {first_things} cost {line1} dollars.",
        f"The {second_things} cost {line2} dollars.",
        f"{name} spends {line3} dollars.",
        f"The change is {line4} dollars.",
    )
    return Worked(question, lines, rest)


def bakery(rng: random.Random) -> Worked:
    things = rng.choice(BAKED)
    trays, per_tray, days = rng.randint(2, 6), rng.randint(4, 12), rng.randint(2, 7)
    daily, line1 = calc(trays, "*", per_tray)
    made, line2 = calc(daily, "*", days)
    sold = rng.randint(1, made - 1)
    left, line3 = calc(made, "-", sold)
    question = (
        f"A baker makes {trays} trays of {things} with {per_tray} on each tray every day. "
        f"After {days} days the baker has sold {sold} {things}. How many {things} are left?"
    )
    lines = (f"Each day the baker makes {line1} {things}.", f"In {days} days that is {line2}.", f"{line3} are left.")
    return Worked(question, lines, left)


def give_then_share(rng: random.Random) -> Worked:
    (name, sister), (_, things) = two_names(rng), thing(rng)
    packs, per_pack, friends = rng.randint(2, 8), rng.randint(4, 12), rng.randint(2, 6)
    total, line1 = calc(packs, "*", per_pack)
    each_options = [each for each in range(1, total // friends + 1) if total - friends * each >= 1]
    each = rng.choice(each_options)
    given = total - friends * each
    rest, line2 = calc(total, "-", given)
    share_each, line3 = calc(rest, "/", friends)
    question = (
        f"{name} has {packs} packs of {per_pack} {things}, gives {given} to {sister}, and shares the rest "
        f"equally among {friends} friends. How many {things} does each friend get?"
    )
    lines = (f"{name} has {line1} {things}.", f"{line2} are left to share.", f"Each friend gets {line3} {things}.")
    return Worked(question, lines, share_each)


def savings(rng: random.Random) -> Worked:
    name = rng.choice(NAMES)
    (first, _), (second, _) = rng.sample(THINGS, 2)
    weekly, weeks = rng.randint(3, 15), rng.randint(3, 10)
    saved, line1 = calc(weekly, "*", weeks)
    c = rng.randint(1, saved // 2)
    d = rng.randint(1, saved - c - 1)
    spent, line2 = calc(c, "+", d)
    left, line3 = calc(saved, "-", spent)
    question = (
        f"{name} saves ${weekly} every week for {weeks} weeks, then spends ${c} on one {first} "
        f"and ${d} on one {second}. How many dollars does {name} have left?"
    )
    lines = (f"{name} saves {line1} dollars.", f"{name} spends {line2} dollars.", f"{name} has {line3} dollars left.")
    return Worked(question, lines, left)


def garden(rng: random.Random) -> Worked:
    name = rng.choice(NAMES)
    rows, per_row, new_rows = rng.randint(3, 9), rng.randint(4, 12), rng.randint(2, 5)
    planted, line1 = calc(rows, "*", per_row)
    died = rng.randint(1, planted - 1)
    alive, line2 = calc(planted, "-", died)
    added, line3 = calc(new_rows, "*", per_row)
    total, line4 = calc(alive, "+", added)
    question = (
        f"{name}'s garden has {rows} rows of {per_row} plants. {died} plants die, and then {name} plants "
        f"{new_rows} new rows of {per_row} plants. How many plants are in the garden now?"
    )
    lines = (
        f"The garden had {line1} plants.",
        f"After {died} die, {line2} are alive.",
        f"The new rows have {line3} plants.",
        f"Now there are {line4} plants.",
    )
    return Worked(question, lines, total)


TEMPLATES = (two_items_change, bakery, give_then_share, savings, garden)
