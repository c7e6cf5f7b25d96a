"""Training methods as one table: ``lora``, ``qlora``, ``full`` (see :mod:`.base`)."""

from loralab.train.methods.base import ADAPTER, Method
from loralab.train.methods.full import FullMethod
from loralab.train.methods.lora import LoraMethod
from loralab.train.methods.qlora import QLoraMethod

#: method name (a recipe's ``method:``) → the method
METHODS: dict[str, Method] = {method.name: method for method in (LoraMethod(), QLoraMethod(), FullMethod())}

__all__ = ["ADAPTER", "METHODS", "FullMethod", "LoraMethod", "Method", "QLoraMethod"]
