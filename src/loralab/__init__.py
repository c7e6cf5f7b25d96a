"""loralab: LoRA fine-tuning that tells you what the model learned and what it forgot."""
