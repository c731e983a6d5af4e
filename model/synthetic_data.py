"""Seeded synthetic payment-risk data: a transaction description + 16 numbers.

The label comes from a logistic model with three parts, so a model must look
at both inputs and at how they combine:
  * a text term (scam-like intents such as account verification, crypto),
  * a feature term (new account, amount far above the usual, failed logins,
    distant IP, night hours, card-not-present mismatch, chargebacks, ...),
  * an interaction: pressure wording ("urgent", "gift card", "asap") is risky
    only for a vulnerable customer (new account or an unusually large amount);
    on an old account with a normal amount it is harmless.
Everything derives from one numpy Generator, so a seed fixes the data set.
"""
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

# (name, description) in the order the model expects them.
FEATURES: List[Tuple[str, str]] = [
    ("amount", "Transaction amount in account currency"),
    ("account_age_days", "Days since the account was opened"),
    ("txn_count_24h", "Transactions by this account in the last 24 hours"),
    ("txn_amount_24h", "Total amount spent in the last 24 hours"),
    ("avg_txn_amount_90d", "Average transaction amount over 90 days"),
    ("distinct_merchants_7d", "Distinct merchants paid in the last 7 days"),
    ("failed_logins_7d", "Failed login attempts in the last 7 days"),
    ("device_age_days", "Days since this device was first seen"),
    ("ip_distance_km", "Distance between IP geolocation and billing address"),
    ("hour_of_day", "Local hour of the transaction, 0-23"),
    ("is_international", "1 if the merchant is abroad, else 0"),
    ("card_present", "1 if the card was physically present, else 0"),
    ("chargebacks_1y", "Chargebacks filed in the last year"),
    ("days_since_last_txn", "Days since the previous transaction"),
    ("email_age_days", "Days since the email address was first seen"),
    ("shipping_billing_mismatch", "1 if shipping and billing addresses differ"),
]
FEATURE_NAMES = [name for name, _ in FEATURES]
# Features a request may omit (clients often lack them); the server then
# uses the training mean.
OPTIONAL_FEATURES = ("device_age_days", "ip_distance_km", "email_age_days")


@dataclass
class Dataset:
    texts: List[str]
    features: np.ndarray  # float32 [N, F], raw values in FEATURE_NAMES order
    labels: np.ndarray    # int64 [N], 1 = fraud

    def split(self, test_fraction: float) -> Tuple["Dataset", "Dataset"]:
        cut = int(round(len(self.texts) * (1.0 - test_fraction)))
        return (Dataset(self.texts[:cut], self.features[:cut], self.labels[:cut]),
                Dataset(self.texts[cut:], self.features[cut:], self.labels[cut:]))


# --- vocabularies for the text templates -----------------------------------
GROCERS = ["Whole Foods", "Aldi", "Lidl", "Tesco", "Carrefour", "Migros", "Coop",
           "Trader Joe's", "Safeway", "Kroger", "Rewe", "Edeka", "Monoprix",
           "Sainsbury's", "Albert Heijn", "Mercadona"]
RESTAURANTS = ["Café de Flore", "Sushi Zen", "Pizzeria Napoli", "Le Petit Bistro",
               "Naïve Kitchen", "Burger Barn", "Taco Loco", "Ramen Ichiban",
               "The Green Fork", "Brasserie Lipp", "Dim Sum Palace", "Curry House",
               "Café Mokka", "Zürichberg Grill"]
CITIES = ["Zürich", "東京", "Paris", "London", "Berlin", "New York", "São Paulo",
          "Montréal", "Köln", "Málaga", "北京", "大阪", "Kraków", "İstanbul",
          "Madrid", "Toronto", "Sydney", "Lisbon", "Genève", "上海", "Dublin",
          "Amsterdam", "Chicago", "Seattle", "München", "Reykjavík"]
AIRLINES = ["Swiss", "Lufthansa", "Air France", "KLM", "Delta", "United", "ANA",
            "easyJet", "Ryanair", "Iberia", "TAP"]
HOTELS = ["Hilton", "Marriott", "Ibis", "Novotel", "Hyatt", "Holiday Inn",
          "Airbnb", "Booking.com", "Motel One"]
SERVICES = ["Netflix", "Spotify", "Disney+", "iCloud", "Dropbox", "Adobe",
            "YouTube Premium", "Duolingo", "NYTimes", "Xbox Game Pass", "Audible"]
UTILITIES = ["EDF", "E.ON", "Vattenfall", "Comcast", "Verizon", "Swisscom",
             "Vodafone", "Orange", "British Gas", "AT&T"]
STORES = ["Amazon", "IKEA", "Zara", "H&M", "MediaMarkt", "Best Buy", "Decathlon",
          "Uniqlo", "Apple Store", "eBay", "Etsy", "Walmart", "Target", "Fnac"]
PRODUCTS = ["headphones", "running shoes", "desk lamp", "winter jacket",
            "coffee maker", "phone case", "backpack", "bookshelf", "keyboard",
            "yoga mat", "water bottle", "sneakers", "monitor", "blender"]
RIDES = ["Uber", "Lyft", "Bolt", "FreeNow", "taxi"]
NAMES = ["Anna", "Ben", "Chloé", "David", "Elif", "François", "Greta", "Hiro",
         "Isabel", "Jonas", "Kenji", "Lucía", "Mia", "Noah", "Olga", "Pierre",
         "Quinn", "Rania", "Søren", "Tom", "Yuki", "Zoë"]
REASONS = ["rent", "dinner", "concert tickets", "groceries", "holiday", "utilities",
           "birthday present", "car repair", "school trip", "loan repayment"]
GIFT_BRANDS = ["Apple", "Google Play", "Steam", "Amazon", "iTunes", "Visa",
               "Target", "Walmart", "PlayStation", "Xbox"]
COINS = ["bitcoin", "BTC", "ETH", "ethereum", "USDT", "dogecoin", "solana"]
EXCHANGES = ["Binance", "Coinbase", "Kraken", "crypto.com", "Bitstamp", "KuCoin"]
BANKS = ["Chase", "HSBC", "UBS", "Barclays", "BNP Paribas", "Santander", "ING",
         "Wells Fargo", "Revolut", "N26"]
DOMAINS = ["secure-login.net", "verify-now.co", "account-help.info",
           "bank-update.org", "safe-check.io"]
EMOJI = ["☕", "🎁", "💳", "🚀", "✈️", "🍕", "🛒", "💰", "🙏", "😊"]
PRESSURE = ["URGENT:", "urgent -", "Urgent!", "asap", "ASAP!!", "today only",
            "immediately", "right now!!!", "final notice", "time sensitive"]

# Templates per intent; fields in braces are filled from the lists above.
TEMPLATES = {
    "grocery": ["Weekly groceries at {grocer}", "{grocer} #{num} {city}",
                "groceries - {grocer} ({city})", "{grocer} order: {product}",
                "{grocer} self-checkout"],
    "dining": ["Dinner at {restaurant}", "{restaurant} {city} {emoji}",
               "lunch with team @ {restaurant}", "{restaurant} - table for {n}",
               "coffee & croissant, {restaurant}"],
    "travel": ["Flight {airline} {city} → {city2}", "Hotel booking {hotel} {city}",
               "train ticket {city} to {city2}", "{hotel} stay in {city}, {n} nights",
               "{airline} baggage fee"],
    "subscription": ["{service} monthly subscription", "{service} annual plan renewal",
                     "{service} premium", "renewal: {service} family plan"],
    "utilities": ["{utility} electricity bill", "Water bill - {city}",
                  "internet {utility} invoice {num}", "{utility} mobile plan"],
    "retail": ["{store} online order #{num}", "{store}: {product} x{n}",
               "Return & exchange at {store}", "{product} from {store}"],
    "transport": ["{ride} ride to {city} airport", "Parking {city} {n}h",
                  "{ride} trip downtown", "metro pass {city}"],
    "p2p": ["Transfer to {name} for {reason}", "splitting {reason} w/ {name}",
            "{name} - birthday gift {emoji}", "paying back {name} for {reason}"],
    "gift_card": ["Buy {n} {brand} gift cards for {name}",
                  "{brand} gift card ${val} x{n}",
                  "gift card purchase {brand} - send codes to {name}",
                  "{brand} gift cards, scratch and send photo"],
    "wire": ["Wire transfer to {name} ({city})", "international wire - invoice {num}",
             "wire transfer: {reason}", "wire to new beneficiary {name}"],
    "crypto": ["crypto top-up {coin} via {exchange}", "Buy {coin} on {exchange} {emoji}",
               "{exchange} deposit - {coin} wallet {hex}",
               "crypto investment opportunity, {coin} guaranteed returns"],
    "verify": ["verify account to avoid suspension - {bank}",
               "{bank} security: confirm your card details",
               "account locked? verify account now at {domain}",
               "{bank} alert: verify account at {domain}"],
    "refund": ["refund for order #{num} from {store}", "{store} refund processing fee",
               "overpayment refund - return difference to {name}",
               "refund of {reason} to {name}"],
}
INTENTS = list(TEMPLATES)
INTENT_PRIOR = np.array([14, 13, 7, 9, 8, 14, 7, 8, 4, 3, 3, 2, 3], dtype=float)
# Log-odds each intent adds on its own.
INTENT_RISK = {"grocery": -1.0, "dining": -1.0, "travel": -0.2, "subscription": -0.8,
               "utilities": -1.2, "retail": -0.3, "transport": -0.8, "p2p": 0.0,
               "gift_card": 0.3, "wire": 0.9, "crypto": 1.1, "verify": 2.0,
               "refund": 0.8}
# How often each intent's text carries pressure wording.
PRESSURE_RATE = {"gift_card": 0.6, "verify": 0.6, "wire": 0.4, "crypto": 0.3,
                 "refund": 0.3}
SCAM_WORDING = ("gift_card", "verify", "wire")
# Intents with typically larger amounts, and how much larger (log scale).
AMOUNT_SHIFT = {"travel": 1.2, "wire": 1.6, "crypto": 1.0, "gift_card": 0.8,
                "retail": 0.3, "utilities": 0.4, "transport": -0.6, "dining": -0.2}
INTERACTION_WEIGHT = 3.5
# Scale and intercept put the positive rate near 25% and the true log-odds'
# own AUC near 0.96, so a learned model can pass 0.90.
LOGIT_SCALE = 2.5
INTERCEPT = -4.0


def _fill(template: str, rng: np.random.Generator) -> str:
    def pick(items):
        return items[int(rng.integers(len(items)))]
    city, city2 = rng.choice(len(CITIES), size=2, replace=False)
    fields = {
        "grocer": pick(GROCERS), "restaurant": pick(RESTAURANTS),
        "city": CITIES[city], "city2": CITIES[city2], "airline": pick(AIRLINES),
        "hotel": pick(HOTELS), "service": pick(SERVICES), "utility": pick(UTILITIES),
        "store": pick(STORES), "product": pick(PRODUCTS), "ride": pick(RIDES),
        "name": pick(NAMES), "reason": pick(REASONS), "brand": pick(GIFT_BRANDS),
        "coin": pick(COINS), "exchange": pick(EXCHANGES), "bank": pick(BANKS),
        "domain": pick(DOMAINS), "emoji": pick(EMOJI),
        "num": str(int(rng.integers(100, 99999))), "n": str(int(rng.integers(1, 9))),
        "val": str(int(pick([25, 50, 100, 200, 500]))),
        "hex": "0x" + "".join(pick("0123456789abcdef") for _ in range(6)),
    }
    return template.format(**fields)


def _typo(text: str, rng: np.random.Generator) -> str:
    """Doubles a letter inside one word, giving words the vocab lacks."""
    words = text.split(" ")
    i = int(rng.integers(len(words)))
    w = words[i]
    if len(w) > 3:
        j = int(rng.integers(1, len(w) - 1))
        words[i] = w[:j] + w[j] + w[j:]
    return " ".join(words)


def _make_text(intent: str, pressure: bool, rng: np.random.Generator) -> str:
    templates = TEMPLATES[intent]
    text = _fill(templates[int(rng.integers(len(templates)))], rng)
    if pressure:
        word = PRESSURE[int(rng.integers(len(PRESSURE)))]
        text = f"{word} {text}" if rng.random() < 0.5 else f"{text} {word}"
    r = rng.random()
    if r < 0.08:
        text = text.upper()
    elif r < 0.16:
        text = text.title()
    elif r < 0.24:
        text = text.lower()
    if rng.random() < 0.1:
        text = _typo(text, rng)
    if rng.random() < 0.08:
        text = f"{text} {EMOJI[int(rng.integers(len(EMOJI)))]}"
    return text


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def simulate(n: int, seed: int = 0) -> Tuple[Dataset, np.ndarray]:
    """The data set and the true log-odds its labels were drawn from."""
    rng = np.random.default_rng(seed)
    intent_idx = rng.choice(len(INTENTS), size=n, p=INTENT_PRIOR / INTENT_PRIOR.sum())
    intents = [INTENTS[i] for i in intent_idx]
    pressure_rate = np.array([PRESSURE_RATE.get(i, 0.04) for i in intents])
    pressure = rng.random(n) < pressure_rate

    new_account = rng.random(n) < 0.15
    account_age = np.where(new_account, rng.integers(0, 31, n),
                           np.clip(rng.lognormal(np.log(700), 0.9, n), 31, 5000)).round()
    avg_90d = np.clip(rng.lognormal(3.7, 0.6, n), 2, 3000)
    shift = np.array([AMOUNT_SHIFT.get(i, 0.0) for i in intents])
    # A minority spend far above their usual; that is a risk signal.
    spike = rng.random(n) < 0.12
    amount = np.clip(avg_90d * rng.lognormal(shift + np.where(spike, 1.8, 0.0), 0.5),
                     0.5, 25000).round(2)
    burst = rng.random(n) < 0.08
    txn_count = rng.poisson(1.2 + 4.0 * burst).astype(float)
    txn_amount = (txn_count * avg_90d * rng.lognormal(0, 0.4, n) + amount).round(2)
    merchants = rng.poisson(3.5 + 3.0 * burst).astype(float)
    failed_logins = rng.poisson(rng.gamma(0.3, 1.0, n)).astype(float)
    new_device = rng.random(n) < 0.15
    device_age = np.where(new_device, rng.integers(0, 8, n),
                          np.clip(rng.lognormal(np.log(250), 1.0, n), 8, 4000)).round()
    is_international = (rng.random(n) < np.where(np.array(intents) == "travel", 0.6, 0.08))
    ip_distance = np.clip(rng.lognormal(np.log(12), 1.3, n)
                          + is_international * rng.lognormal(np.log(800), 0.8, n),
                          0, 15000).round(1)
    hour_profile = np.array([2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 6, 7, 8,
                             8, 7, 6, 4, 3], dtype=float)
    hour = rng.choice(24, size=n, p=hour_profile / hour_profile.sum()).astype(float)
    card_present = rng.random(n) < np.where(is_international, 0.15, 0.45)
    chargebacks = rng.poisson(0.07, n).astype(float)
    days_since_last = np.round(rng.exponential(np.where(new_account, 1.0, 4.0)), 1)
    fresh_email = new_account & (rng.random(n) < 0.4)
    email_age = np.where(fresh_email, rng.integers(0, 31, n),
                         np.clip(rng.lognormal(np.log(1200), 0.9, n), 0, 8000)).round()
    mismatch = rng.random(n) < np.where(card_present, 0.03, 0.14)

    features = np.stack([
        amount, account_age, txn_count, txn_amount, avg_90d.round(2), merchants,
        failed_logins, device_age, ip_distance, hour, is_international.astype(float),
        card_present.astype(float), chargebacks, days_since_last, email_age,
        mismatch.astype(float)], axis=1).astype(np.float32)

    log_ratio = np.clip(np.log(amount / avg_90d), -2, 5)
    night = (hour <= 4) | (hour >= 23)
    feature_term = (0.6 * np.maximum(log_ratio, 0) + 1.0 * new_account
                    + 0.6 * np.minimum(failed_logins, 4) + 0.8 * new_device
                    + 0.6 * (ip_distance > 500) * (np.array(intents) != "travel")
                    + 0.6 * night + 0.8 * (mismatch & ~card_present)
                    + 0.9 * np.minimum(chargebacks, 2) + 0.5 * burst
                    + 0.6 * fresh_email - 0.4 * card_present)
    intent_risk = np.array([INTENT_RISK[i] for i in intents])
    text_term = intent_risk + 0.5 * pressure
    scam_wording = pressure | np.isin(intents, SCAM_WORDING)
    vulnerable = np.maximum(_sigmoid((30 - account_age) / 5.0),
                            _sigmoid(2.5 * (log_ratio - 1.3)))
    interaction = INTERACTION_WEIGHT * scam_wording * vulnerable
    logit = INTERCEPT + LOGIT_SCALE * (text_term + feature_term + interaction)
    labels = (rng.random(n) < _sigmoid(logit)).astype(np.int64)

    texts = [_make_text(intent, bool(p), rng) for intent, p in zip(intents, pressure)]
    return Dataset(texts, features, labels), logit


def generate(n: int, seed: int = 0) -> Dataset:
    """n labelled samples; the same (n, seed) always gives the same data."""
    return simulate(n, seed)[0]
