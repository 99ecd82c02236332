"""The closed registry of fine-tuning methods; importing this package registers every entry."""

from runners.methods import adalora, full, light, lora, qlora  # noqa: F401  (registration side effects)
from runners.methods._base import METHODS, Method, get_method, register_method

__all__ = ["METHODS", "Method", "get_method", "register_method"]
