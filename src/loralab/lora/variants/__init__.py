"""LoRA variants as one table (see :mod:`.base`), plus the scaling rules and init schemes they share."""

from loralab.lora.rules import INIT_SCHEMES, SCALING_RULES
from loralab.lora.variants.base import Params, Variant
from loralab.lora.variants.dora import Dora
from loralab.lora.variants.plain import PlainLora

#: variant name → variant; ``LoraConfig`` selects one through its ``config_field``
VARIANTS: dict[str, Variant] = {variant.name: variant for variant in (PlainLora(), Dora())}

__all__ = ["INIT_SCHEMES", "SCALING_RULES", "VARIANTS", "Params", "Variant"]
