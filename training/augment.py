"""Entity-swap augmentation: copies of training sentences with their entity
mentions replaced by other mentions of the same label.

A from-scratch model learns many names by heart; swapping names and places
across sentences makes it rely on the context around a mention instead.
"""

from __future__ import annotations

import random

from corpora import Example


def build_inventory(examples: list[Example], labels: set[str]) -> dict[str, list[str]]:
    """Collect the distinct mentions of each label, in a fixed order."""
    seen: dict[str, dict[str, None]] = {label: {} for label in labels}
    for ex in examples:
        for start, end, label in ex.spans:
            if label in seen and 1 < end - start <= 12:
                seen[label][ex.text[start:end]] = None
    return {label: list(mentions) for label, mentions in seen.items()}


def swap_entities(ex: Example, inventory: dict[str, list[str]], rng: random.Random,
                  rate: float = 0.8, cross_rate: float = 0.0) -> Example | None:
    """Return a copy of ex with each swappable mention replaced at the given rate.

    cross_rate of the replaced people and places get a mention of the other
    class, of two or three characters, and keep their own label. A place name
    where the sentence speaks of a person is then a person, as 钟南山 is, and
    a person's name where it speaks of a place is a place. The words around
    a name, not the name alone, decide its class.
    """
    spans = sorted(ex.spans)
    if not any(label in inventory for _, _, label in spans):
        return None
    parts: list[str] = []
    new_spans = []
    pos = 0
    shift = 0
    for start, end, label in spans:
        if start < pos:
            return None  # overlapping spans cannot be rebuilt safely
        parts.append(ex.text[pos:start])
        mention = ex.text[start:end]
        pool = inventory.get(label)
        if pool and rng.random() < rate:
            other = CROSS_CLASS.get(label)
            if other in inventory and rng.random() < cross_rate:
                pool = [m for m in inventory[other] if 2 <= len(m) <= 3] or pool
            mention = pool[rng.randrange(len(pool))]
        new_start = start + shift
        parts.append(mention)
        new_spans.append((new_start, new_start + len(mention), label))
        shift += len(mention) - (end - start)
        pos = end
    parts.append(ex.text[pos:])
    return Example("".join(parts), new_spans, ex.corpus)


def synthesise(inventory: dict[str, list[str]], rng: random.Random, count: int,
               place_like_share: float = 0.1, collision_share: float = 0.0) -> None:
    """Add made-up names and places to the inventory, in place.

    People: a surname seen in the data with one or two given-name characters
    drawn independently from those seen, so the model meets names it cannot
    know by heart. A tenth of them have a numeral for a given name (张三,
    王五), and place_like_share of them end like a place (钟南山). Places:
    the stem of one place with the suffix (市, 山, 城, 州, ...) of another,
    or, for place_like_share of them, a place's first character, a surname
    and a suffix (碎叶城).

    collision_share of each are harder forms: people whose surname also
    starts places (黄 as in 黄山) and whose name ends like a place, and places
    that start with any character seen in a mention, often one that never
    starts a place, then a surname and a suffix. place_like_share draws the
    common surnames and first characters, so it seldom makes these.
    """
    people = [p for p in inventory.get("人物", []) if 2 <= len(p) <= 3]
    place_firsts = {p[0] for p in inventory.get("地点", [])}
    if people:
        surnames = [p[0] for p in people]
        given = [c for p in people for c in p[1:]]
        # One entry per person, so common surnames are drawn more often.
        colliding = [s for s in surnames if s in place_firsts] or surnames
        for _ in range(count):
            kind = rng.random()
            if kind < NUMERAL_NAME_SHARE:
                # Placeholder names such as 张三 and 王五: a surname and a numeral.
                name = rng.choice(surnames) + rng.choice(NUMERALS)
            elif kind < NUMERAL_NAME_SHARE + place_like_share:
                # Names that end like a place, such as 钟南山 or 孙中山.
                name = rng.choice(surnames) + rng.choice(given) + rng.choice(PLACE_LIKE_ENDINGS)
            elif kind < NUMERAL_NAME_SHARE + place_like_share + collision_share:
                name = rng.choice(colliding) + rng.choice(given) + rng.choice(PLACE_LIKE_ENDINGS)
            else:
                name = rng.choice(surnames) + "".join(rng.choice(given) for _ in range(rng.choice((1, 2))))
            inventory["人物"].append(name)
    places = [p for p in inventory.get("地点", []) if 2 <= len(p) <= 5 and p[-1] in PLACE_SUFFIXES]
    if places:
        stems = [p[:-1] for p in places if len(p) >= 3]
        firsts = [p[0] for p in places]
        # Each distinct character once, so that rare ones are drawn as often
        # as common ones.
        any_chars = sorted({c for mentions in inventory.values() for m in mentions for c in m})
        for _ in range(count):
            kind = rng.random() if people else 1.0
            if kind < place_like_share:
                # Places with a surname inside, such as 碎叶城 or 张家口, so that
                # the surname does not start a person.
                place = rng.choice(firsts) + rng.choice(surnames) + rng.choice(places)[-1]
            elif kind < place_like_share + collision_share:
                place = rng.choice(any_chars) + rng.choice(surnames) + rng.choice(places)[-1]
            else:
                place = rng.choice(stems) + rng.choice(places)[-1]
            inventory["地点"].append(place)


PLACE_SUFFIXES = set("市县省区州城山河湖岛镇村乡江峰岭寺")
# Share of made-up people named like 张三, 李四, 王五, which Chinese examples
# and legal texts use for anyone. The corpora have few such names, so a
# numeral after a surname otherwise reads as a count.
NUMERALS = "一二三四五六七八九十"
NUMERAL_NAME_SHARE = 0.1
# Made-up people whose name ends like a place (钟南山) and made-up places
# with a surname inside (碎叶城) both mislead a model that has learnt that
# 山 ends places and a surname starts people. synthesise makes a share of
# each, a tenth by default.
PLACE_LIKE_ENDINGS = "山江峰林海"


# Labels whose mentions cross_rate exchanges: people and places.
CROSS_CLASS = {"人物": "地点", "地点": "人物"}


def augment(examples: list[Example], labels: set[str], fraction: float, seed: int,
            synthetic: int = 0, place_like_share: float = 0.1,
            collision_share: float = 0.0, cross_rate: float = 0.0) -> list[Example]:
    """Return swapped copies of a random fraction of examples."""
    rng = random.Random(seed)
    inventory = build_inventory(examples, labels)
    if synthetic > 0:
        synthesise(inventory, rng, synthetic, place_like_share, collision_share)
    out = []
    for ex in examples:
        if rng.random() < fraction:
            copy = swap_entities(ex, inventory, rng, cross_rate=cross_rate)
            if copy is not None:
                out.append(copy)
    return out
