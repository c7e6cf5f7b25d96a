"""Evaluation tasks: parsing task names, loading their items, and scoring a model on them."""
