"""A seeded demo catalog: apparel, coffee, coffee gear, home goods and accessories.

Every product has 1 to 4 variants (sizes, bag weights or colours) with exact :class:`~decimal.Decimal`
prices in the store's currency, priced the way shops in that currency do (``24.99`` USD,
``129.90`` BRL, ``149000`` IDR), and stock in two locations, ``warehouse`` and ``store``.

Demand is skewed (a few products sell much more than the rest). Stock is set against the demand the
traffic simulator expects over the period, so some products run low and sell out while the long tail
barely moves. The same seed, currency and sizes always give the same catalog.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from storeflow.model.money import currency_exponent

LOCATIONS: Final = ("warehouse", "store")
CURRENCIES: Final = ("IDR", "BRL", "USD")
SHOP_URL: Final = "https://demo.store"
LOW_STOCK: Final = 5  # the engine's default low_stock_threshold


@dataclass(frozen=True)
class Variant:
    variant_id: str
    sku: str
    title: str
    price: Decimal
    stock: Mapping[str, int]  # location -> units at the start

    @property
    def units(self) -> int:
        return sum(self.stock.values())


@dataclass(frozen=True)
class Product:
    product_id: str
    handle: str
    title: str
    product_type: str
    vendor: str
    tags: tuple[str, ...]
    popularity: float  # share of demand; the catalog's shares add up to 1
    variants: tuple[Variant, ...]

    @property
    def url(self) -> str:
        return f"{SHOP_URL}/products/{self.handle}"


@dataclass(frozen=True)
class Catalog:
    currency: str
    products: tuple[Product, ...]

    def __len__(self) -> int:
        return len(self.products)

    @property
    def variant_count(self) -> int:
        return sum(len(p.variants) for p in self.products)


# -- word lists ---------------------------------------------------------------------------------

_Axis = tuple[tuple[str, str, Decimal], ...]  # (variant title, sku suffix, price factor)

AXES: Final[dict[str, _Axis]] = {
    "sizes": tuple((s, s, Decimal(1)) for s in ("XS", "S", "M", "L", "XL")),
    "bags": (("250 g", "250G", Decimal(1)), ("500 g", "500G", Decimal("1.85")), ("1 kg", "1KG", Decimal("3.4")),
             ("Drip bags x10", "DRIP10", Decimal("0.9"))),
    "home_sizes": (("Small", "S", Decimal(1)), ("Medium", "M", Decimal("1.4")), ("Large", "L", Decimal("1.9")),
                   ("Extra Large", "XL", Decimal("2.5"))),
    "sets": (("Single", "1", Decimal(1)), ("Set of 2", "2", Decimal("1.9")), ("Set of 4", "4", Decimal("3.6")),
             ("Set of 6", "6", Decimal("5.2"))),
    "candle": (("Travel 80 g", "80G", Decimal("0.55")), ("Classic 200 g", "200G", Decimal(1)),
               ("Large 400 g", "400G", Decimal("1.7"))),
}
ROASTS: Final = ("Light Roast", "Medium Roast", "Espresso Roast", "Filter Roast", "Natural Process",
                  "Honey Process")
COLOURS: Final = ("Black", "Navy", "Olive", "Sand", "Terracotta", "Stone", "Forest", "Rust", "Oat", "Charcoal",
                  "Indigo", "Sage", "Clay", "Ivory")


@dataclass(frozen=True)
class _Item:
    category: str
    code: str
    noun: str
    usd: tuple[int, int]
    modifiers: tuple[str, ...]
    axis: str  # a key of AXES, or "colours" (the variants are colours; no colour in the title)


_ITEMS: Final = (
    _Item("Apparel", "TEE", "T-Shirt", (16, 32),
          ("Classic", "Organic Cotton", "Heavyweight", "Pocket", "Boxy", "Essential", "Vintage Wash"), "sizes"),
    _Item("Apparel", "HOOD", "Hoodie", (48, 85), ("Heavyweight", "Fleece", "Everyday", "Zip", "Garment-Dyed"),
          "sizes"),
    _Item("Apparel", "CREW", "Crewneck Sweatshirt", (42, 70), ("Loopback", "Everyday", "Brushed", "Garment-Dyed"),
          "sizes"),
    _Item("Apparel", "POLO", "Polo", (30, 55), ("Pique", "Knit", "Linen", "Classic"), "sizes"),
    _Item("Apparel", "OVSH", "Overshirt", (55, 95), ("Canvas", "Corduroy", "Twill", "Quilted"), "sizes"),
    _Item("Apparel", "SHRT", "Linen Shirt", (45, 80), ("Relaxed", "Camp Collar", "Band Collar", "Long-Sleeve"),
          "sizes"),
    _Item("Apparel", "BTK", "Batik Shirt", (35, 70), ("Parang", "Kawung", "Mega Mendung", "Truntum"), "sizes"),
    _Item("Apparel", "JOG", "Joggers", (40, 65), ("Fleece", "Tapered", "Everyday", "Lightweight"), "sizes"),
    _Item("Apparel", "SHO", "Shorts", (28, 50), ("Chino", "Linen", "Swim", "Trail"), "sizes"),
    _Item("Apparel", "CARD", "Cardigan", (55, 110), ("Merino", "Cotton Knit", "Chunky", "Fine-Gauge"), "sizes"),
    _Item("Apparel", "DRS", "Dress", (45, 95), ("Linen Midi", "Wrap", "Shirt", "Slip", "Tiered"), "sizes"),
    _Item("Coffee", "COF", "", (11, 22),
          ("Toraja Sapan", "Gayo Aceh", "Java Preanger", "Flores Bajawa", "Kintamani Bali", "Sumatra Mandheling",
           "Cerrado Mineiro", "Sul de Minas", "Mogiana", "Chapada Diamantina", "Huila Colombia",
           "Yirgacheffe Ethiopia", "Antigua Guatemala", "Kenya Nyeri", "Papua Wamena"), "bags"),
    _Item("Coffee Gear", "DRIP", "Pour-Over Dripper", (18, 35),
          ("Ceramic", "Glass", "Stainless", "Porcelain", "Flat-Bottom", "Cone"), "colours"),
    _Item("Coffee Gear", "GRND", "Hand Grinder", (45, 120),
          ("Steel Burr", "Ceramic Burr", "Compact", "Travel", "Precision"), "colours"),
    _Item("Coffee Gear", "KTL", "Gooseneck Kettle", (40, 90), ("Stovetop", "Electric", "Matte", "Copper"),
          "colours"),
    _Item("Coffee Gear", "CBB", "Cold Brew Bottle", (22, 38), ("Glass", "Insulated", "Large", "Filter-in"),
          "colours"),
    _Item("Coffee Gear", "MOKA", "Moka Pot", (28, 55), ("3-Cup", "6-Cup", "Induction", "Classic"), "colours"),
    _Item("Coffee Gear", "SCL", "Coffee Scale", (24, 60), ("Timer", "Pocket", "Drip"), "colours"),
    _Item("Home", "MUG", "Mug", (12, 26), ("Stoneware", "Speckled", "Hand-Thrown", "Enamel", "Ceramic"), "sets"),
    _Item("Home", "BOWL", "Bowl", (14, 30), ("Stoneware", "Terracotta", "Reactive Glaze", "Coconut"), "sets"),
    _Item("Home", "PLT", "Dinner Plate", (14, 28), ("Stoneware", "Speckled", "Rimmed", "Matte"), "sets"),
    _Item("Home", "TMB", "Tumbler", (8, 16), ("Recycled Glass", "Ribbed Glass", "Amber Glass"), "sets"),
    _Item("Home", "VASE", "Vase", (24, 60), ("Ribbed Glass", "Terracotta", "Stoneware", "Rattan-Wrapped"),
          "home_sizes"),
    _Item("Home", "CNDL", "Candle", (16, 34), ("Sandalwood", "Vetiver", "Coffee & Cedar", "Jasmine", "Fig Leaf",
                                               "Lemongrass", "Kretek Spice", "Frangipani"), "candle"),
    _Item("Home", "PILW", "Cushion Cover", (22, 40), ("Linen", "Woven", "Batik", "Velvet", "Tufted"),
          "home_sizes"),
    _Item("Home", "TWL", "Tea Towel", (7, 13), ("Linen", "Waffle", "Striped", "Cotton"), "sets"),
    _Item("Home", "PLNT", "Planter", (18, 48), ("Terracotta", "Concrete", "Rattan", "Glazed"), "home_sizes"),
    _Item("Home", "BRD", "Serving Board", (26, 58), ("Teak", "Acacia", "Olive Wood", "Marble"), "home_sizes"),
    _Item("Home", "LAMP", "Table Lamp", (65, 140), ("Rattan", "Ceramic", "Paper", "Mushroom"), "home_sizes"),
    _Item("Home", "BSKT", "Storage Basket", (24, 52), ("Seagrass", "Rattan", "Water Hyacinth", "Jute"),
          "home_sizes"),
    _Item("Home", "THRW", "Throw Blanket", (45, 95), ("Cotton Waffle", "Wool", "Ikat", "Fringed Linen"),
          "home_sizes"),
    _Item("Accessories", "TOTE", "Tote Bag", (18, 32), ("Canvas", "Recycled", "Market", "Heavy Canvas", "Zip-Top"),
          "colours"),
    _Item("Accessories", "WLT", "Wallet", (35, 70), ("Leather", "Card", "Zip", "Bifold", "Coin"), "colours"),
    _Item("Accessories", "HAT", "Bucket Hat", (22, 38), ("Cotton", "Corduroy", "Reversible", "Nylon"), "colours"),
    _Item("Accessories", "CAP", "Cap", (20, 34), ("Six-Panel", "Washed", "Corduroy", "Trucker", "Wool"),
          "colours"),
    _Item("Accessories", "BPK", "Backpack", (60, 130), ("Rolltop", "Daypack", "Canvas", "Commuter"), "colours"),
    _Item("Accessories", "SCRF", "Scarf", (30, 85), ("Silk", "Batik Silk", "Wool", "Linen", "Ikat"), "colours"),
    _Item("Accessories", "SNGL", "Sunglasses", (35, 90), ("Round", "Square", "Aviator", "Cat-Eye"), "colours"),
)

_CATEGORY_WEIGHTS: Final = {"Apparel": 34, "Coffee": 24, "Coffee Gear": 9, "Home": 23, "Accessories": 10}
_VENDORS: Final = {
    "Apparel": ("Rimba Studio", "Casa Linho", "Northline Supply"),
    "Coffee": ("Kebun Kopi Roasters", "Fazenda Alta", "Roastery Seven"),
    "Coffee Gear": ("Brew Works", "Kebun Kopi Roasters"),
    "Home": ("Tanah Liat", "Oficina do Barro", "Hearth & Loom"),
    "Accessories": ("Kanvas Co.", "Trilha", "Northline Supply"),
}
_PRICE_DIGITS: Final = {"USD": 2, "BRL": 2, "IDR": 0}  # shops in rupiah show no cents
_USD_PER: Final = {"USD": Decimal(1), "BRL": Decimal("5.2"), "IDR": Decimal(16000)}


# -- prices ---------------------------------------------------------------------------------------

def shop_price(usd: Decimal, currency: str, *, charm: bool = True) -> Decimal:
    """A price near ``usd`` (in US dollars) in ``currency``, rounded the way shops in it price
    (``charm``: 24.99 rather than 25.00 in USD)."""
    value = usd * _USD_PER[currency]
    if currency == "USD":
        dollars = max(1, int(value.to_integral_value(ROUND_HALF_UP)))
        price = Decimal(dollars) - Decimal("0.01") if charm else Decimal(dollars)
    elif currency == "BRL":
        tens = max(1, int((value / 10).to_integral_value(ROUND_HALF_UP)))
        price = Decimal(tens * 10) - Decimal("0.10")
    else:  # IDR: 49.000, 149.000, 1.249.000
        step = 50_000 if value >= 1_000_000 else 10_000
        units = max(1, int((value / step).to_integral_value(ROUND_HALF_UP)))
        price = Decimal(units * step - 1_000)
    return price.quantize(Decimal(1).scaleb(-min(_PRICE_DIGITS[currency], currency_exponent(currency))))


def check_currency_supported(currency: str) -> str:
    code = currency.strip().upper()
    if code not in CURRENCIES:
        raise ValueError(f"{currency!r} is not a demo currency; use one of {', '.join(CURRENCIES)}")
    return code


# -- building -------------------------------------------------------------------------------------

def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _title(item: _Item, modifier: str, rng: random.Random) -> str:
    if item.category == "Coffee":
        return f"{modifier} {rng.choice(ROASTS)}"
    base = f"{modifier} {item.noun}"
    return base if item.axis == "colours" else f"{base}, {rng.choice(COLOURS)}"


def _axis(item: _Item, rng: random.Random) -> _Axis:
    """1 to 4 variants: (variant title, sku suffix, price factor)."""
    n = rng.choices((1, 2, 3, 4), weights=(15, 20, 30, 35))[0]
    if item.axis == "colours":
        if n == 1:
            return (("Default", "STD", Decimal(1)),)
        return tuple((c, c[:3].upper(), Decimal(1)) for c in rng.sample(COLOURS, n))
    values = AXES[item.axis]
    n = min(n, len(values))
    if item.axis == "sizes" and n == 1:
        return (("One size", "OS", Decimal(1)),)
    if item.axis == "sizes":
        first = rng.randint(0, len(values) - n)
        return values[first:first + n]
    return values[:n]


def _zipf_shares(n: int, rng: random.Random, exponent: float = 1.0) -> list[float]:
    ranks = list(range(1, n + 1))
    rng.shuffle(ranks)
    weights = [1.0 / (r ** exponent) for r in ranks]
    total = sum(weights)
    return [w / total for w in weights]


def build_catalog(seed: int = 7, currency: str = "USD", size: int = 300, *,
                  expected_units: float | None = None) -> Catalog:
    """``size`` products priced in ``currency``.

    ``expected_units`` is how many units the whole catalog is expected to sell over the simulated
    period (the traffic model knows); stock is set against it so that popular products run low and
    some sell out. Default: two units per product.
    """
    currency = check_currency_supported(currency)
    if size < 1:
        raise ValueError("a catalog needs at least one product")
    rng = random.Random(f"catalog:{seed}")
    demand = float(expected_units if expected_units is not None else 2.0 * size)
    shares = _zipf_shares(size, rng)
    top_decile = sorted(shares, reverse=True)[max(0, size // 10 - 1)]
    categories = list(_CATEGORY_WEIGHTS)
    by_category = {c: [i for i in _ITEMS if i.category == c] for c in categories}
    titles: set[str] = set()
    products: list[Product] = []
    for index in range(size):
        for _attempt in range(200):
            category = rng.choices(categories, weights=list(_CATEGORY_WEIGHTS.values()))[0]
            item = rng.choice(by_category[category])
            title = _title(item, rng.choice(item.modifiers), rng)
            if title not in titles:
                break
        else:  # the word lists ran out of new titles: number them
            title = f"{title} No. {index + 1}"
        titles.add(title)
        number = index + 1
        product_id = f"prod-{number:04d}"
        base_usd = Decimal(rng.randint(item.usd[0] * 100, item.usd[1] * 100)) / 100
        axis = _axis(item, rng)
        charm = rng.random() < 0.6
        in_store = rng.random() < 0.6
        best_seller = shares[index] >= top_decile
        units = _split(_stock(demand * shares[index], rng, best_seller=best_seller), len(axis), rng)
        variants = []
        for (label, suffix, factor), v_units in zip(axis, units, strict=True):
            store_units = round(v_units * rng.uniform(0.15, 0.35)) if in_store else 0
            variants.append(Variant(
                variant_id=f"{product_id}-{slugify(suffix)}",
                sku=f"{item.code}-{number:04d}-{suffix}",
                title=label,
                price=shop_price(base_usd * factor, currency, charm=charm),
                stock={"warehouse": v_units - store_units, "store": store_units},
            ))
        tags = tuple(sorted({slugify(category), slugify(item.noun or "coffee beans"),
                             *(("in-store",) if in_store else ())}))
        products.append(Product(
            product_id=product_id,
            handle=slugify(title),
            title=title,
            product_type=category,
            vendor=rng.choice(_VENDORS[category]),
            tags=tags,
            popularity=shares[index],
            variants=tuple(variants),
        ))
    return Catalog(currency, tuple(products))


def _stock(expected: float, rng: random.Random, *, best_seller: bool = False) -> int:
    """Units at the start for a product expected to sell ``expected`` units over the period: some
    are thin (they sell out; most best-sellers do), a quarter are tight (they run low, under the
    default low-stock threshold of 5), the rest have enough or plenty."""
    thin = 0.6 if best_seller else 0.2
    roll = rng.random()
    if roll < thin:
        return max(1, round(expected * rng.uniform(0.3, 0.8)))
    if roll < thin + 0.25:
        return LOW_STOCK + max(1, round(expected * rng.uniform(0.3, 0.9)))
    if roll < 0.85:
        return round(expected * rng.uniform(1.5, 3.0)) + LOW_STOCK + rng.randint(1, 5)
    return round(expected * rng.uniform(3.0, 6.0)) + 10 + rng.randint(0, 10)


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` units over ``parts`` variants, unevenly (middle sizes sell more); some get none."""
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    out = [0] * parts
    for _ in range(total):
        out[rng.choices(range(parts), weights=weights)[0]] += 1
    return out


# -- as events ------------------------------------------------------------------------------------

def _amount(value: Decimal) -> str:
    return format(value, "f")


def product_event(product: Product, currency: str, at: datetime) -> dict[str, Any]:
    """``product_created`` with the variants and prices (stock comes separately, per location)."""
    return {
        "type": "product_created",
        "id": f"product-created:{product.product_id}",
        "occurred_at": at.isoformat(),
        "properties": {
            "product_id": product.product_id,
            "title": product.title,
            "vendor": product.vendor,
            "product_type": product.product_type,
            "status": "published",
            "tags": list(product.tags),
            "currency": currency,
            "url": product.url,
            "variants": [{"variant_id": v.variant_id, "sku": v.sku, "title": v.title, "price": _amount(v.price)}
                         for v in product.variants],
        },
    }


def stock_events(product: Product, at: datetime) -> list[dict[str, Any]]:
    """Absolute stock counts per variant and location (a location with nothing is left out)."""
    out = []
    for v in product.variants:
        for location in LOCATIONS:
            units = v.stock.get(location, 0)
            if units == 0:  # nothing counted is nothing in stock
                continue
            out.append({
                "type": "inventory_changed",
                "id": f"stock-count:{v.variant_id}:{location}",
                "occurred_at": at.isoformat(),
                "properties": {"product_id": product.product_id, "variant_id": v.variant_id, "sku": v.sku,
                               "location": location, "quantity": units, "reason": "stock count"},
            })
    return out
