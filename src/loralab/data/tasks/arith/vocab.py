"""Names and things that the arithmetic word problems talk about."""

from __future__ import annotations

NAMES = (
    "Ava", "Ben", "Carla", "Dev", "Emma", "Finn", "Grace", "Hugo", "Ines", "Jack",
    "Kira", "Liam", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sam", "Tara",
    "Umar", "Vera", "Will", "Yara", "Zoe", "Omar", "Lena", "Raj", "Mia", "Leo",
)  # fmt: skip

# (singular, plural) of countable things bought, shared and counted.
THINGS = (
    ("apple", "apples"), ("pencil", "pencils"), ("cookie", "cookies"), ("marble", "marbles"),
    ("book", "books"), ("orange", "oranges"), ("sticker", "stickers"), ("cupcake", "cupcakes"),
    ("toy car", "toy cars"), ("notebook", "notebooks"), ("balloon", "balloons"), ("shell", "shells"),
    ("candle", "candles"), ("egg", "eggs"), ("card", "cards"), ("muffin", "muffins"),
)  # fmt: skip

# Plurals of things a baker makes.
BAKED = ("cookies", "cupcakes", "muffins", "pies", "rolls", "buns", "loaves")

# (what is done, unit, per): "reads 5 pages each day".
RATES = (
    ("reads", "pages", "day"), ("walks", "km", "day"), ("writes", "lines", "hour"),
    ("bakes", "pies", "week"), ("paints", "cards", "hour"), ("saves", "dollars", "week"),
)  # fmt: skip
