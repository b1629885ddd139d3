"""The purpose vocabulary: a tree, where a grant for a purpose covers every purpose below it."""

from __future__ import annotations

from typing import Final

# purpose -> parent (None for the root). Tokens follow the IETF AIPREF vocabulary where it has them.
PURPOSE_PARENTS: Final[dict[str, str | None]] = {
    "all": None,
    "tdm": "all",
    "train-ai": "tdm",
    "train-genai": "train-ai",
    "ai-use": "all",
    "search": "all",
}

PURPOSE_DESCRIPTIONS: Final[dict[str, str]] = {
    "all": "Every use below",
    "tdm": "Text and data mining, analysis",
    "train-ai": "Training any AI model",
    "train-genai": "Training generative models",
    "ai-use": "Use as input when a model runs (RAG, grounding, prompting)",
    "search": "Search indexing",
}

# How each purpose reads in the vocabularies Kyoka maps to (for exports and embedded signals).
PURPOSE_MAPPINGS: Final[dict[str, dict[str, list[str]]]] = {
    "all": {"rsl": ["all"]},
    "tdm": {"cawg": ["cawg.data_mining"], "tdmrep": ["tdm-reservation"]},
    "train-ai": {"rsl": ["ai-train"], "cawg": ["cawg.ai_training"], "iptc": ["DMI-PROHIBITED-AIMLTRAINING"]},
    "train-genai": {"cawg": ["cawg.ai_generative_training"], "iptc": ["DMI-PROHIBITED-GENAIMLTRAINING"]},
    "ai-use": {"rsl": ["ai-input"], "cawg": ["cawg.ai_inference"]},
    "search": {"rsl": ["search", "ai-index"]},
}

PURPOSES: Final[tuple[str, ...]] = tuple(PURPOSE_PARENTS)


def purpose_lineage(purpose: str) -> tuple[str, ...]:
    """The purpose and every purpose above it: the grants that would cover it."""
    chain = []
    current: str | None = purpose
    while current is not None:
        chain.append(current)
        current = PURPOSE_PARENTS[current]
    return tuple(chain)


# Precomputed once: checks ask this for every grant they weigh.
_COVERING: Final[dict[str, frozenset[str]]] = {p: frozenset(purpose_lineage(p)) for p in PURPOSES}


def purposes_cover(granted: list[str] | tuple[str, ...], requested: str) -> bool:
    """True when any granted purpose is the requested one or an ancestor of it."""
    covering = _COVERING[requested]
    return any(p in covering for p in granted)


def purpose_tree() -> dict:
    """The vocabulary as a nested tree, for the API."""

    def node(name: str) -> dict:
        return {
            "id": name,
            "description": PURPOSE_DESCRIPTIONS[name],
            "mappings": PURPOSE_MAPPINGS.get(name, {}),
            "children": [node(child) for child, parent in PURPOSE_PARENTS.items() if parent == name],
        }

    return node("all")


CONTEXTS: Final[tuple[str, ...]] = ("commercial", "non-commercial", "research")
DEFAULT_CONTEXT: Final[str] = "commercial"
