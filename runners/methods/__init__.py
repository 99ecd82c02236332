"""The closed registry of fine-tuning methods; importing this package registers every entry."""

from runners.methods import adalora, full, light, lora, qlora, rag  # noqa: F401  (registration side effects)
from runners.methods._base import (
    METHOD_ALIASES,
    METHODS,
    Method,
    canonical_name,
    get_method,
    register_method,
)

__all__ = ["METHODS", "METHOD_ALIASES", "Method", "canonical_name", "get_method", "register_method"]
