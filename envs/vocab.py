"""Vocabulary for synthesising a WebShop-style catalog and shopper instructions.

Written as plain data for the deterministic generator in `envs/generate.py`; nothing
here is random and nothing is imported at runtime. The shapes follow WebShop
(princeton-nlp/WebShop): five top categories; per product a scraping `query`, an
Amazon breadcrumb joined by " › " into `product_category`, a title, bullet points,
a description, option groups and short lower-case "attributes".

What the generator can rely on (checked by `validate()` at the bottom):

- `PRODUCT_TYPES`: at least 16 types per category. Each has a unique lower-case
  `query`; a 3-5 level `breadcrumb` starting at the category's Amazon department
  (related types share upper levels, so WebShop's category-overlap reward has
  something to match); 2-4 Title Case title `nouns`; 12-20 distinct `attributes`
  of 1-3 words made of lower-case letters, digits and spaces, none a substring of
  another of the same type; 0-3 option groups of 6-14 lower-case values; a
  `price` range in dollars within 3-600; 5-8 bullet `features` templates using only
  "{attr}" and "{noun}"; 2-5 lower-case `uses` meant to follow "for".
- `INSTRUCTION_TEMPLATES`: each has "{noun}", "{attrs}" and "{options}" exactly once,
  with "{options}" glued to the word before it. The generator passes "{options}" as
  either "" or a string starting with a space (" in navy blue, size x-large"), so
  the template reads well both ways. Attributes mix adjectives ("gluten free") and
  noun-like tags ("living room"), so most templates put "{attrs}" before the noun.
- `OPTION_PHRASES`: 2-4 "{value}" phrases for every option group used by a type.
- `DESCRIPTION_TEMPLATES` use all of "{brand}", "{noun}", "{attr}", "{attr2}", "{use}".
- Brand names are invented and unique across categories.
"""

from __future__ import annotations

from typing import Any

CATEGORIES: tuple[str, ...] = ("beauty", "electronics", "fashion", "food", "furniture")

# The Amazon top department each category's breadcrumbs start with.
DEPARTMENTS: dict[str, str] = {
    "beauty": "Beauty & Personal Care",
    "electronics": "Electronics",
    "fashion": "Clothing, Shoes & Jewelry",
    "food": "Grocery & Gourmet Food",
    "furniture": "Home & Kitchen",
}

# ---------------------------------------------------------------------------------
# Shared option values and bullet points, reused by several product types below.
# ---------------------------------------------------------------------------------

_APPAREL_COLORS = ("black", "white", "heather gray", "navy blue", "charcoal", "olive green",
                   "burgundy", "royal blue", "light pink", "khaki", "forest green", "red")
_APPAREL_SIZES = ("x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large")
_WOMEN_SHOE_SIZES = ("5", "5.5", "6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "11",
                     "8 wide", "9 wide")
_MEN_SHOE_SIZES = ("7", "8", "8.5", "9", "9.5", "10", "10.5", "11", "11.5", "12", "13",
                   "10 wide", "11 wide")
_WOOD_FINISHES = ("espresso", "walnut", "natural oak", "white", "black", "rustic brown",
                  "gray wash", "cherry", "vintage brown")
_PACKS = ("pack of 1", "pack of 2", "pack of 3", "pack of 4", "pack of 6", "pack of 12")
_GADGET_COLORS = ("black", "white", "silver", "space gray", "navy blue", "rose gold", "red")

_BEAUTY_FEATURES = (
    "{attr} formula that fits into any everyday beauty routine",
    "not happy with your {noun}? contact us for a replacement or a full refund",
)
_ELECTRONICS_FEATURES = (
    "{attr} design built to keep up with a busy day",
    "what you get: {noun}, user manual, 12 month warranty and friendly support",
)
_FASHION_FEATURES = (
    "{attr} design for all day comfort",
    "please check the size chart in the images before ordering your {noun}",
)
_FOOD_FEATURES = (
    "{attr} and made with simple ingredients you can pronounce",
    "packed fresh and shipped quickly so your {noun} arrives ready to enjoy",
)
_FURNITURE_FEATURES = (
    "{attr} construction that holds up to everyday use",
    "backed by a one year warranty and responsive customer service for your {noun}",
)

# ---------------------------------------------------------------------------------
# Product types. One dict per type; see the module docstring for the keys.
# ---------------------------------------------------------------------------------

_BEAUTY_TYPES: tuple[dict[str, Any], ...] = (
    # -- hair care --
    {"category": "beauty", "query": "shampoo",
     "breadcrumb": ("Beauty & Personal Care", "Hair Care", "Shampoo & Conditioner", "Shampoos"),
     "nouns": ("Shampoo", "Hair Shampoo", "Shampoo and Conditioner Set", "Clarifying Shampoo"),
     "attributes": ("sulfate free", "paraben free", "cruelty free", "natural ingredients",
                    "hair growth", "hair loss", "damaged hair", "dry scalp", "tea tree",
                    "argan oil", "color safe", "plant based", "high quality", "easy to use",
                    "fragrance free", "salon quality"),
     "options": {"scent": ("unscented", "lavender", "coconut", "tea tree mint", "citrus",
                           "rosemary", "eucalyptus", "argan"),
                 "size": ("3.4 fl oz", "8 fl oz", "12 fl oz", "16.9 fl oz", "25 fl oz",
                          "33.8 fl oz")},
     "price": (6.0, 40.0),
     "features": _BEAUTY_FEATURES + (
         "gently cleanses the scalp and leaves hair soft with a {attr} formula",
         "each {noun} lathers richly and rinses clean without weighing hair down",
         "safe for color treated hair and suitable for every hair type",
         "{attr} blend of botanicals that supports a healthy scalp"),
     "uses": ("women", "men", "damaged hair", "dry scalp", "daily use")},
    {"category": "beauty", "query": "conditioner",
     "breadcrumb": ("Beauty & Personal Care", "Hair Care", "Shampoo & Conditioner", "Conditioners"),
     "nouns": ("Conditioner", "Deep Conditioner", "Leave In Conditioner"),
     "attributes": ("sulfate free", "paraben free", "silicone free", "cruelty free",
                    "natural ingredients", "coconut oil", "shea butter", "damaged hair",
                    "curly hair", "frizz control", "deep moisture", "color safe",
                    "high quality", "long lasting", "easy to use"),
     "options": {},
     "price": (6.0, 38.0),
     "features": _BEAUTY_FEATURES + (
         "detangles and smooths frizz in minutes with a {attr} formula",
         "leave your {noun} on for two minutes, then rinse for soft, shiny hair",
         "rich in oils and butters that restore moisture to dry ends"),
     "uses": ("women", "curly hair", "damaged hair", "daily use")},
    {"category": "beauty", "query": "hair extensions",
     "breadcrumb": ("Beauty & Personal Care", "Hair Care", "Hair Extensions, Wigs & Accessories",
                    "Hair Extensions"),
     "nouns": ("Clip In Hair Extensions", "Tape In Hair Extensions", "Human Hair Extensions",
               "Ponytail Extension"),
     "attributes": ("high quality", "natural hair", "synthetic hair", "human hair",
                    "heat resistant", "easy to apply", "long lasting", "straight hair",
                    "body wave", "seamless", "tangle free", "soft touch", "natural looking",
                    "double weft", "reusable"),
     "options": {"color": ("natural black", "dark brown", "medium brown", "chestnut brown",
                           "honey blonde", "platinum blonde", "ash blonde", "auburn",
                           "balayage", "burgundy", "ombre brown"),
                 "size": ("14 inch", "16 inch", "18 inch", "20 inch", "22 inch", "24 inch")},
     "price": (15.0, 180.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} wefts that blend in with your own hair for instant length and volume",
         "each {noun} can be curled, straightened and washed like your own hair",
         "secure clips hold all day without pulling or slipping",
         "clip in and take out in five minutes, no salon visit needed"),
     "uses": ("women", "thin hair", "daily wear", "party", "wedding")},
    {"category": "beauty", "query": "wigs",
     "breadcrumb": ("Beauty & Personal Care", "Hair Care", "Hair Extensions, Wigs & Accessories",
                    "Wigs"),
     "nouns": ("Lace Front Wig", "Bob Wig", "Synthetic Wig", "Human Hair Wig"),
     "attributes": ("high quality", "natural looking", "heat resistant", "synthetic hair",
                    "human hair", "pre plucked", "baby hair", "glueless", "breathable cap",
                    "adjustable straps", "short bob", "curly", "straight", "easy to wear",
                    "cosplay"),
     "options": {"color": ("natural black", "jet black", "dark brown", "blonde",
                           "ombre blonde", "burgundy", "gray", "pastel pink", "blue"),
                 "size": ("12 inch", "14 inch", "16 inch", "20 inch", "24 inch", "26 inch")},
     "price": (18.0, 220.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} hairline that looks natural from every angle",
         "breathable cap with adjustable straps keeps your {noun} comfortable all day",
         "ready to wear straight out of the box, with a wig cap included",
         "can be styled with low heat tools for a fresh new look"),
     "uses": ("women", "black women", "cosplay", "daily wear", "party")},
    {"category": "beauty", "query": "hair dye",
     "breadcrumb": ("Beauty & Personal Care", "Hair Care", "Hair Coloring Products", "Hair Color"),
     "nouns": ("Hair Dye", "Permanent Hair Color", "Hair Color Kit", "Semi Permanent Hair Dye"),
     "attributes": ("long lasting", "ammonia free", "natural ingredients", "gray coverage",
                    "easy to use", "cruelty free", "vegan", "plant based", "permanent color",
                    "semi permanent", "henna", "ppd free", "salon quality", "low odor",
                    "damage free", "high quality"),
     "options": {"color": ("jet black", "natural black", "dark brown", "light brown",
                           "copper red", "burgundy", "golden blonde", "platinum", "blue",
                           "purple", "silver gray"),
                 "item package quantity": _PACKS},
     "price": (5.0, 30.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} color that covers grays in one application",
         "everything you need in one box: {noun}, developer, gloves and aftercare",
         "rich, even color that fades gracefully without harsh lines",
         "gentle on the scalp with a low odor, {attr} cream"),
     "uses": ("women", "men", "gray hair", "home use")},
    # -- skin care --
    {"category": "beauty", "query": "face moisturizer",
     "breadcrumb": ("Beauty & Personal Care", "Skin Care", "Face", "Creams & Moisturizers",
                    "Face Moisturizers"),
     "nouns": ("Face Moisturizer", "Face Cream", "Night Cream", "Hydrating Gel Cream"),
     "attributes": ("anti aging", "oil free", "fragrance free", "sensitive skin", "dry skin",
                    "oily skin", "hyaluronic acid", "vitamin c", "fine lines",
                    "natural ingredients", "cruelty free", "non comedogenic", "paraben free",
                    "long lasting", "dermatologist tested", "spf 30"),
     "options": {"size": ("1 fl oz", "1.7 fl oz", "2 fl oz", "2.5 fl oz", "3.4 fl oz", "4 fl oz"),
                 "item package quantity": _PACKS},
     "price": (8.0, 70.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} cream that absorbs quickly and leaves no greasy film",
         "use your {noun} morning and night on clean skin for lasting hydration",
         "helps smooth fine lines and restore a healthy glow",
         "gentle enough for every skin type, including sensitive skin"),
     "uses": ("women", "men", "sensitive skin", "dry skin", "daily use")},
    {"category": "beauty", "query": "face serum",
     "breadcrumb": ("Beauty & Personal Care", "Skin Care", "Face", "Treatments & Masks", "Serums"),
     "nouns": ("Face Serum", "Vitamin C Serum", "Hyaluronic Acid Serum", "Retinol Serum"),
     "attributes": ("anti aging", "dark spots", "fine lines", "dark circles", "vitamin c",
                    "hyaluronic acid", "retinol", "niacinamide", "cruelty free",
                    "paraben free", "natural ingredients", "sensitive skin", "fast absorbing",
                    "lightweight", "high quality"),
     "options": {},
     "price": (9.0, 65.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} serum that targets dark spots and uneven tone",
         "a few drops of {noun} under your moisturizer is all it takes",
         "lightweight texture that sinks in fast and layers well under makeup"),
     "uses": ("women", "men", "oily skin", "mature skin", "night use")},
    {"category": "beauty", "query": "sunscreen",
     "breadcrumb": ("Beauty & Personal Care", "Skin Care", "Sunscreens & Tanning Products",
                    "Sunscreens"),
     "nouns": ("Sunscreen", "Sunscreen Lotion", "Sunscreen Spray", "Mineral Sunscreen"),
     "attributes": ("spf 50", "broad spectrum", "water resistant", "reef safe", "oil free",
                    "zinc oxide", "mineral based", "fragrance free", "sensitive skin",
                    "non greasy", "easy to apply", "travel size", "paraben free",
                    "cruelty free"),
     "options": {"size": ("1.7 fl oz", "3 fl oz", "5 fl oz", "6 fl oz", "8 fl oz", "10 fl oz"),
                 "item package quantity": _PACKS},
     "price": (6.0, 35.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} protection against uva and uvb rays",
         "stays on through 80 minutes of swimming or sweating",
         "apply your {noun} 15 minutes before sun exposure and reapply every two hours",
         "rubs in clear with no white cast"),
     "uses": ("kids", "face", "body", "outdoor sports", "the beach")},
    # -- makeup --
    {"category": "beauty", "query": "lipstick",
     "breadcrumb": ("Beauty & Personal Care", "Makeup", "Lips", "Lipstick"),
     "nouns": ("Lipstick", "Matte Lipstick", "Liquid Lipstick", "Lipstick Set"),
     "attributes": ("long lasting", "waterproof", "matte finish", "high pigment",
                    "cruelty free", "paraben free", "moisturizing", "non stick",
                    "smudge proof", "transfer proof", "vegan", "natural ingredients",
                    "easy to apply", "high quality"),
     "options": {"color": ("ruby red", "nude", "rose pink", "berry", "coral", "plum", "mauve",
                           "brick red", "hot pink", "chocolate brown", "wine"),
                 "item package quantity": _PACKS},
     "price": (5.0, 35.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} color that stays put through coffee and meals",
         "one swipe of {noun} gives full, even coverage",
         "enriched with vitamin e and jojoba oil so lips never feel dry",
         "slim bullet that fits in any clutch or pocket"),
     "uses": ("women", "girls", "daily makeup", "party", "gift")},
    {"category": "beauty", "query": "foundation",
     "breadcrumb": ("Beauty & Personal Care", "Makeup", "Face", "Foundation"),
     "nouns": ("Foundation", "Liquid Foundation", "Cushion Foundation", "Powder Foundation"),
     "attributes": ("full coverage", "long lasting", "oil free", "matte finish", "dewy finish",
                    "sensitive skin", "oily skin", "spf 15", "waterproof", "non comedogenic",
                    "lightweight", "cruelty free", "natural looking", "buildable coverage"),
     "options": {"color": ("porcelain", "ivory", "light beige", "natural beige", "sand", "honey",
                           "tan", "caramel", "warm beige", "mocha", "espresso", "deep brown")},
     "price": (7.0, 50.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} formula that evens skin tone without looking cakey",
         "blend your {noun} with fingers, a sponge or a brush",
         "shades for every skin tone, from porcelain to deep brown",
         "controls shine for up to 16 hours"),
     "uses": ("women", "oily skin", "dry skin", "daily makeup", "special events")},
    {"category": "beauty", "query": "concealer",
     "breadcrumb": ("Beauty & Personal Care", "Makeup", "Face", "Concealers & Neutralizers"),
     "nouns": ("Concealer", "Liquid Concealer", "Concealer Stick", "Color Correcting Concealer"),
     "attributes": ("dark circles", "full coverage", "long lasting", "crease proof",
                    "waterproof", "sensitive skin", "cruelty free", "paraben free",
                    "lightweight", "blemish cover", "under eye", "vegan", "easy to blend",
                    "high quality"),
     "options": {"color": ("fair", "light", "light medium", "medium", "medium tan", "tan", "deep",
                           "rich", "peach", "green corrector")},
     "price": (5.0, 32.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} coverage that hides dark circles and blemishes",
         "the doe foot wand puts just enough {noun} where you need it",
         "creamy texture that blends easily and never creases"),
     "uses": ("women", "dark circles", "sensitive skin", "daily makeup")},
    {"category": "beauty", "query": "eyeshadow palette",
     "breadcrumb": ("Beauty & Personal Care", "Makeup", "Eyes", "Eyeshadow"),
     "nouns": ("Eyeshadow Palette", "Eye Shadow Palette", "Glitter Eyeshadow",
               "Shimmer Eyeshadow Palette"),
     "attributes": ("highly pigmented", "long lasting", "waterproof", "shimmer", "matte",
                    "glitter", "cruelty free", "easy to blend", "smudge proof", "travel size",
                    "nude shades", "crease resistant", "vegan", "high quality"),
     "options": {"color": ("nude", "smoky", "rose gold", "sunset", "neutral", "galaxy",
                           "warm brown", "pastel", "emerald"),
                 "style": ("9 colors", "12 colors", "18 colors", "35 colors", "40 colors",
                           "120 colors")},
     "price": (6.0, 45.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} shades that go from soft daytime looks to bold evenings",
         "every {noun} comes with a large mirror and a dual ended brush",
         "buttery powders that blend smoothly with little fallout",
         "slim case that slips into your makeup bag"),
     "uses": ("women", "girls", "beginners", "party", "travel")},
    {"category": "beauty", "query": "nail polish",
     "breadcrumb": ("Beauty & Personal Care", "Foot, Hand & Nail Care", "Nail Art & Polish",
                    "Nail Polish"),
     "nouns": ("Nail Polish", "Gel Nail Polish", "Nail Polish Set", "Nail Lacquer"),
     "attributes": ("long lasting", "quick dry", "non toxic", "chip resistant", "high gloss",
                    "easy to apply", "cruelty free", "vegan", "soak off", "uv led", "glitter",
                    "nail art", "salon quality", "peel off"),
     "options": {"color": ("classic red", "nude pink", "coral", "burgundy", "navy blue", "black",
                           "white", "lilac", "mint green", "gold glitter", "silver glitter"),
                 "item package quantity": ("pack of 1", "pack of 3", "pack of 6", "pack of 10",
                                           "pack of 12", "pack of 24")},
     "price": (4.0, 35.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} shine that lasts up to 14 days without chipping",
         "wide brush lays down an even coat of {noun} in one stroke",
         "free of the harshest chemicals and gentle on natural nails",
         "salon results at home in minutes"),
     "uses": ("women", "girls", "nail art", "home manicures", "gift")},
    # -- oral and personal care --
    {"category": "beauty", "query": "electric toothbrush",
     "breadcrumb": ("Beauty & Personal Care", "Oral Care", "Toothbrushes & Accessories",
                    "Powered Toothbrushes"),
     "nouns": ("Electric Toothbrush", "Sonic Toothbrush", "Rechargeable Toothbrush",
               "Kids Electric Toothbrush"),
     "attributes": ("sensitive teeth", "teeth whitening", "rechargeable", "long battery life",
                    "smart timer", "soft bristles", "waterproof", "travel case",
                    "replacement heads", "gum care", "easy to use", "high quality",
                    "usb charging", "quiet motor"),
     "options": {"color": ("black", "white", "pink", "blue", "purple", "green", "rose gold"),
                 "style": ("1 brush head", "4 brush heads", "8 brush heads", "with travel case",
                           "kids edition", "twin pack")},
     "price": (15.0, 120.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} cleaning with 40000 strokes per minute",
         "a built in two minute timer makes your {noun} easy to use right",
         "one four hour charge lasts up to 30 days",
         "five modes from gentle to deep clean"),
     "uses": ("adults", "kids", "sensitive teeth", "travel", "daily use")},
    {"category": "beauty", "query": "toothpaste",
     "breadcrumb": ("Beauty & Personal Care", "Oral Care", "Toothpaste"),
     "nouns": ("Toothpaste", "Whitening Toothpaste", "Fluoride Free Toothpaste"),
     "attributes": ("fluoride free", "teeth whitening", "sensitive teeth", "bad breath",
                    "natural ingredients", "sls free", "vegan", "cruelty free", "fresh breath",
                    "cavity protection", "gum health", "charcoal", "enamel repair",
                    "kid friendly", "travel size"),
     "options": {"flavor name": ("fresh mint", "spearmint", "peppermint", "cinnamon",
                                 "strawberry", "bubble gum", "charcoal mint", "unflavored"),
                 "item package quantity": _PACKS},
     "price": (3.0, 25.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} paste that lifts surface stains gently",
         "brush with your {noun} twice a day for a cleaner, fresher mouth",
         "low abrasion formula that is kind to enamel"),
     "uses": ("adults", "kids", "sensitive teeth", "bad breath")},
    {"category": "beauty", "query": "deodorant",
     "breadcrumb": ("Beauty & Personal Care", "Personal Care", "Deodorants & Antiperspirants",
                    "Deodorant"),
     "nouns": ("Deodorant", "Natural Deodorant", "Deodorant Stick", "Antiperspirant Deodorant"),
     "attributes": ("aluminum free", "paraben free", "baking soda free", "long lasting",
                    "natural ingredients", "sensitive skin", "cruelty free", "vegan",
                    "odor protection", "48 hour", "travel size", "clinical strength",
                    "invisible solid", "plant based"),
     "options": {"scent": ("unscented", "lavender", "coconut", "eucalyptus mint", "cedarwood",
                           "rose", "fresh citrus", "sandalwood"),
                 "item package quantity": _PACKS},
     "price": (4.0, 24.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} protection that keeps you fresh from morning to night",
         "glides on clear, so your {noun} never leaves white marks on clothes",
         "made with arrowroot powder and coconut oil to absorb moisture"),
     "uses": ("men", "women", "teens", "sensitive skin", "daily use")},
    {"category": "beauty", "query": "perfume",
     "breadcrumb": ("Beauty & Personal Care", "Fragrance", "Women's", "Eau de Parfum"),
     "nouns": ("Eau de Parfum", "Perfume", "Perfume Spray", "Fragrance Mist"),
     "attributes": ("long lasting", "travel size", "alcohol free", "floral scent",
                    "fresh scent", "woody scent", "vanilla scent", "gift set", "refillable",
                    "cruelty free", "natural ingredients", "roll on", "high quality",
                    "fine mist"),
     "options": {"scent": ("amber romance", "rose petal", "vanilla musk", "jasmine",
                           "citrus bloom", "ocean breeze", "sandalwood", "cherry blossom"),
                 "size": ("0.33 fl oz", "1 fl oz", "1.7 fl oz", "2.5 fl oz", "3.4 fl oz",
                          "8 fl oz")},
     "price": (12.0, 150.0),
     "features": _BEAUTY_FEATURES + (
         "{attr} fragrance with top notes of bergamot and pear",
         "a few sprays of {noun} last from the office to dinner",
         "elegant glass bottle that looks beautiful on any vanity",
         "comes gift wrapped and ready to give"),
     "uses": ("women", "men", "gift", "daily wear", "evening")},
)

_ELECTRONICS_TYPES: tuple[dict[str, Any], ...] = (
    # -- audio --
    {"category": "electronics", "query": "bluetooth headphones",
     "breadcrumb": ("Electronics", "Headphones, Earbuds & Accessories", "Headphones",
                    "Over-Ear Headphones"),
     "nouns": ("Bluetooth Headphones", "Wireless Headphones", "Over Ear Headphones",
               "Noise Cancelling Headphones"),
     "attributes": ("noise cancelling", "wireless bluetooth", "long battery life", "hands free",
                    "built in microphone", "foldable", "stereo sound", "deep bass",
                    "memory foam", "fast charging", "lightweight", "high quality", "hi fi",
                    "over ear", "comfortable fit"),
     "options": {"color": ("black", "white", "silver", "navy blue", "rose gold", "midnight blue",
                           "gray", "red"),
                 "style": ("standard", "with carrying case", "with extra cable", "kids version",
                           "pro version", "limited edition")},
     "price": (20.0, 350.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} sound with 40mm drivers and rich, punchy bass",
         "up to 40 hours of playtime on a single charge",
         "soft protein leather ear cushions make your {noun} comfortable for hours",
         "folds flat to slip into a backpack or carry case"),
     "uses": ("travel", "working from home", "gaming", "kids", "the gym")},
    {"category": "electronics", "query": "wireless earbuds",
     "breadcrumb": ("Electronics", "Headphones, Earbuds & Accessories", "Headphones",
                    "Earbud Headphones"),
     "nouns": ("Wireless Earbuds", "Bluetooth Earbuds", "True Wireless Earbuds", "Sports Earbuds"),
     "attributes": ("noise cancelling", "wireless charging", "charging case", "water resistant",
                    "hands free", "touch control", "stereo sound", "deep bass",
                    "long battery life", "in ear", "ear hooks", "low latency", "fast pairing",
                    "high quality", "sweat proof"),
     "options": {"color": ("black", "white", "navy blue", "pink", "sage green", "beige",
                           "purple")},
     "price": (15.0, 250.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} earbuds that pair automatically when you open the case",
         "the pocket sized case charges your {noun} up to five times",
         "three sizes of silicone tips for a secure, comfortable seal",
         "clear calls with dual microphones on each bud"),
     "uses": ("running", "workouts", "commuting", "travel", "phone calls")},
    {"category": "electronics", "query": "bluetooth speaker",
     "breadcrumb": ("Electronics", "Portable Audio & Video", "Portable Speakers & Docks",
                    "Portable Bluetooth Speakers"),
     "nouns": ("Bluetooth Speaker", "Portable Speaker", "Wireless Speaker", "Outdoor Speaker"),
     "attributes": ("waterproof", "portable", "wireless bluetooth", "stereo sound", "deep bass",
                    "long battery life", "hands free", "built in microphone", "usb charging",
                    "loud volume", "easy to carry", "dustproof", "high quality", "rgb lights",
                    "tws pairing"),
     "options": {"color": ("black", "blue", "red", "gray", "camo", "teal", "white", "orange"),
                 "style": ("single speaker", "speaker bundle", "twin pack",
                           "with charging cable", "with strap", "with radio")},
     "price": (15.0, 200.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} speaker that fills a room or a campsite with clear sound",
         "pair two of these {noun} units for true stereo",
         "rated ip67 so it shrugs off rain, sand and pool splashes",
         "built in strap for bikes, backpacks and shower heads"),
     "uses": ("outdoor parties", "the beach", "camping", "the shower", "home")},
    # -- phone accessories --
    {"category": "electronics", "query": "phone case",
     "breadcrumb": ("Electronics", "Cell Phones & Accessories", "Cases, Holsters & Sleeves",
                    "Basic Cases"),
     "nouns": ("Phone Case", "Protective Phone Case", "Clear Phone Case", "Wallet Phone Case"),
     "attributes": ("shockproof", "wireless charging", "military grade", "slim fit", "clear",
                    "tempered glass", "card holder", "kickstand", "magnetic", "anti scratch",
                    "raised edges", "full body protection", "easy to install", "high quality",
                    "drop protection"),
     "options": {"color": ("black", "clear", "navy blue", "purple", "mint green", "pink", "red",
                           "marble", "glitter gold"),
                 "style": ("case only", "case with screen protector", "case with ring holder",
                           "case with lanyard", "wallet style", "rugged style")},
     "price": (6.0, 45.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} protection tested against drops from 10 feet",
         "precise cutouts give full access to every port and button on your {noun}",
         "raised lips around the screen and camera keep them off the table",
         "works with wireless chargers without taking the case off"),
     "uses": ("women", "men", "kids", "outdoor use", "everyday carry")},
    {"category": "electronics", "query": "screen protector",
     "breadcrumb": ("Electronics", "Cell Phones & Accessories", "Accessories",
                    "Screen Protectors"),
     "nouns": ("Screen Protector", "Tempered Glass Screen Protector", "Privacy Screen Protector"),
     "attributes": ("tempered glass", "easy to install", "bubble free", "anti fingerprint",
                    "high definition", "case friendly", "privacy", "9h hardness",
                    "scratch resistant", "full coverage", "blue light", "camera lens",
                    "ultra clear", "high quality"),
     "options": {"item package quantity": ("pack of 1", "pack of 2", "pack of 3", "pack of 4",
                                           "pack of 6", "pack of 10"),
                 "style": ("clear", "privacy", "matte", "with camera protector",
                           "with installation frame", "anti blue light")},
     "price": (5.0, 25.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} glass that keeps the touch screen as responsive as ever",
         "the alignment frame lets you install your {noun} in under a minute",
         "oleophobic coating resists smudges and fingerprints"),
     "uses": ("phones", "tablets", "kids", "everyday use")},
    {"category": "electronics", "query": "phone charger",
     "breadcrumb": ("Electronics", "Cell Phones & Accessories", "Accessories",
                    "Chargers & Power Adapters"),
     "nouns": ("Phone Charger", "Fast Charger", "Wireless Charger", "Wall Charger"),
     "attributes": ("fast charging", "wireless charging", "usb c", "dual port", "compact size",
                    "overheat protection", "high speed", "foldable plug", "qi certified",
                    "travel friendly", "easy to use", "high quality", "long cable",
                    "led indicator"),
     "options": {"color": ("black", "white", "gray", "blue", "pink", "green"),
                 "style": ("20w single port", "30w dual port", "65w gan", "wireless pad",
                           "wireless stand", "car charger"),
                 "number of items": ("1 count", "2 count", "3 count", "4 count", "5 count",
                                     "6 count")},
     "price": (8.0, 60.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} charging that takes a phone from empty to half in 30 minutes",
         "smart chip detects your device and sends the right current from your {noun}",
         "built in protection against overheating and short circuits"),
     "uses": ("phones", "tablets", "travel", "the car", "the office")},
    {"category": "electronics", "query": "power bank",
     "breadcrumb": ("Electronics", "Cell Phones & Accessories", "Accessories",
                    "Chargers & Power Adapters", "Portable Power Banks"),
     "nouns": ("Power Bank", "Portable Charger", "Battery Pack", "Solar Power Bank"),
     "attributes": ("fast charging", "wireless charging", "high capacity", "usb c",
                    "led display", "slim design", "dual output", "travel friendly",
                    "lightweight", "built in cables", "solar panel", "airline approved",
                    "high quality", "pass through"),
     "options": {"color": ("black", "white", "blue", "pink", "green", "silver"),
                 "capacity": ("5000mah", "10000mah", "20000mah", "26800mah", "30000mah",
                              "50000mah")},
     "price": (12.0, 90.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} battery that charges a phone up to four times",
         "charge two devices at once from one {noun}",
         "the digital display shows exactly how much power is left",
         "slim enough for a jeans pocket and approved for carry on bags"),
     "uses": ("travel", "camping", "phones", "emergencies", "commuting")},
    {"category": "electronics", "query": "smartwatch bands",
     "breadcrumb": ("Electronics", "Wearable Technology", "Smartwatch Accessories", "Bands"),
     "nouns": ("Smartwatch Band", "Watch Band", "Replacement Strap", "Sport Band"),
     "attributes": ("quick release", "stainless steel", "soft silicone", "genuine leather",
                    "adjustable", "breathable", "sweat resistant", "magnetic clasp",
                    "easy to install", "nylon loop", "metal buckle", "high quality",
                    "slim design", "waterproof"),
     "options": {"color": ("black", "nude", "midnight blue", "rose gold", "silver", "olive green",
                           "pink sand", "starlight", "red", "white", "lavender"),
                 "size": ("38mm", "40mm", "41mm", "42mm", "44mm", "45mm", "small", "large"),
                 "material": ("silicone", "leather", "stainless steel", "nylon", "metal mesh",
                              "resin")},
     "price": (6.0, 40.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} band that swaps on and off in seconds with no tools",
         "each {noun} fits wrists from 5.5 to 8 inches",
         "soft, skin friendly material that stays comfortable during workouts"),
     "uses": ("women", "men", "sports", "workouts", "the office")},
    # -- tv and video --
    {"category": "electronics", "query": "hdmi cable",
     "breadcrumb": ("Electronics", "Television & Video", "Accessories", "Cables", "HDMI Cables"),
     "nouns": ("HDMI Cable", "High Speed HDMI Cable", "HDMI Cord", "HDMI Adapter Cable"),
     "attributes": ("high speed", "4k", "8k", "gold plated", "braided", "ethernet", "hdr",
                    "male to male", "ultra hd", "plug and play", "high definition",
                    "tangle free", "durable", "flexible"),
     "options": {"size": ("3 feet", "6 feet", "10 feet", "15 feet", "25 feet", "50 feet"),
                 "item package quantity": ("pack of 1", "pack of 2", "pack of 3", "pack of 4",
                                           "pack of 5", "pack of 10")},
     "price": (5.0, 40.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} connection that carries video up to 4k at 120hz",
         "gold plated plugs on every {noun} resist corrosion",
         "braided nylon jacket survives more than 10000 bends",
         "works with tvs, game consoles, laptops and projectors"),
     "uses": ("tvs", "gaming consoles", "laptops", "projectors", "monitors")},
    {"category": "electronics", "query": "tv wall mount",
     "breadcrumb": ("Electronics", "Television & Video", "Accessories",
                    "TV Mounts, Stands & Turntables", "TV Wall & Ceiling Mounts"),
     "nouns": ("TV Wall Mount", "Full Motion TV Mount", "TV Bracket", "Tilting TV Wall Mount"),
     "attributes": ("heavy duty", "full motion", "tilting", "swivel", "easy to install",
                    "wall mounted", "cable management", "low profile", "vesa compatible",
                    "steel frame", "ceiling mount", "high quality", "articulating arm",
                    "level adjustment"),
     "options": {},
     "price": (18.0, 150.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} steel arms hold screens up to 132 pounds",
         "tilt, swivel and extend your {noun} for the perfect viewing angle",
         "all hardware and a drilling template are included",
         "fits most 32 to 75 inch tvs"),
     "uses": ("living rooms", "bedrooms", "flat screen tvs", "offices")},
    # -- cameras --
    {"category": "electronics", "query": "security camera",
     "breadcrumb": ("Electronics", "Camera & Photo", "Video Surveillance", "Surveillance Cameras"),
     "nouns": ("Security Camera", "Outdoor Security Camera", "WiFi Camera", "Doorbell Camera"),
     "attributes": ("motion detection", "night vision", "two way audio", "1080p hd",
                    "weatherproof", "cloud storage", "wireless", "easy to install",
                    "battery powered", "wifi", "pan tilt", "sd card", "smart alerts",
                    "high definition", "solar powered"),
     "options": {"color": ("white", "black", "gray", "beige", "silver", "dark green"),
                 "style": ("1 camera", "2 cameras", "3 cameras", "4 cameras", "indoor",
                           "outdoor", "with solar panel")},
     "price": (25.0, 250.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} monitoring with instant alerts sent to your phone",
         "see clearly at night up to 30 feet with your {noun}",
         "talk to visitors through the two way audio",
         "set up in minutes with the free app, no hub required"),
     "uses": ("home security", "baby monitoring", "pets", "outdoor use", "small businesses")},
    {"category": "electronics", "query": "digital camera",
     "breadcrumb": ("Electronics", "Camera & Photo", "Digital Cameras",
                    "Point & Shoot Digital Cameras"),
     "nouns": ("Digital Camera", "Vlogging Camera", "Compact Camera", "Kids Camera"),
     "attributes": ("optical zoom", "4k video", "image stabilization", "flip screen", "wifi",
                    "high resolution", "rechargeable battery", "sd card", "compact size",
                    "easy to use", "face detection", "carrying case", "digital photography",
                    "high quality"),
     "options": {"color": ("black", "silver", "red", "pink", "blue", "white"),
                 "style": ("camera only", "with 32gb card", "with 64gb card", "with tripod",
                           "vlogging kit", "with extra battery")},
     "price": (50.0, 550.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} shooting with a 48 megapixel sensor",
         "the flip screen makes your {noun} great for selfies and vlogs",
         "share photos straight to your phone over wifi",
         "small enough for a coat pocket"),
     "uses": ("beginners", "kids", "travel", "vlogging", "teens")},
    {"category": "electronics", "query": "camera tripod",
     "breadcrumb": ("Electronics", "Camera & Photo", "Tripods & Monopods",
                    "Complete Tripod Units"),
     "nouns": ("Camera Tripod", "Tripod Stand", "Phone Tripod", "Travel Tripod"),
     "attributes": ("lightweight", "aluminum alloy", "carbon fiber", "quick release",
                    "ball head", "bluetooth remote", "extendable", "phone holder",
                    "carrying bag", "heavy duty", "non slip", "easy to carry", "compact",
                    "360 degree rotation"),
     "options": {"color": ("black", "silver", "gray", "blue", "red", "white"),
                 "size": ("40 inch", "50 inch", "60 inch", "67 inch", "72 inch", "80 inch")},
     "price": (15.0, 160.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} legs that set up in seconds on any surface",
         "the quick release plate moves your camera from {noun} to hand instantly",
         "rubber feet grip smooth floors and spikes hold in grass",
         "folds down to fit the included carry bag"),
     "uses": ("photography", "travel", "live streaming", "vlogging")},
    # -- computers --
    {"category": "electronics", "query": "laptop",
     "breadcrumb": ("Electronics", "Computers & Accessories", "Computers & Tablets", "Laptops",
                    "Traditional Laptops"),
     "nouns": ("Laptop", "Notebook Computer", "Gaming Laptop", "Business Laptop"),
     "attributes": ("quad core", "intel core", "solid state drive", "backlit keyboard",
                    "full hd", "touchscreen", "long battery life", "fingerprint reader",
                    "lightweight", "high performance", "wifi 6", "windows 11", "webcam",
                    "usb c", "high resolution"),
     "options": {"color": ("silver", "black", "gray", "blue", "rose gold", "white"),
                 "capacity": ("8gb ram 256gb ssd", "8gb ram 512gb ssd", "16gb ram 512gb ssd",
                              "16gb ram 1tb ssd", "32gb ram 1tb ssd", "32gb ram 2tb ssd")},
     "price": (250.0, 600.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} processor that handles dozens of browser tabs with ease",
         "a 15.6 inch display makes your {noun} great for work and movies",
         "boots in seconds from a fast solid state drive",
         "all day battery with fast charging over usb c"),
     "uses": ("students", "business", "gaming", "home office", "travel")},
    {"category": "electronics", "query": "tablet",
     "breadcrumb": ("Electronics", "Computers & Accessories", "Computers & Tablets", "Tablets"),
     "nouns": ("Tablet", "Android Tablet", "Kids Tablet", "10 Inch Tablet"),
     "attributes": ("octa core", "hd display", "long battery life", "dual camera", "wifi",
                    "expandable storage", "parental controls", "kid proof case",
                    "lightweight", "4g lte", "bluetooth", "high resolution", "usb c",
                    "easy to use"),
     "options": {"color": ("black", "silver", "blue", "pink", "purple", "green"),
                 "capacity": ("32gb", "64gb", "128gb", "256gb", "512gb", "1tb")},
     "price": (60.0, 450.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} screen that is bright enough to read outdoors",
         "stream, read and video chat all day on your {noun}",
         "add up to 1tb with a micro sd card",
         "parental controls let you set screen time limits"),
     "uses": ("kids", "students", "seniors", "travel", "reading")},
    {"category": "electronics", "query": "wireless mouse",
     "breadcrumb": ("Electronics", "Computers & Accessories", "Computer Accessories & Peripherals",
                    "Keyboards, Mice & Accessories", "Mice"),
     "nouns": ("Wireless Mouse", "Bluetooth Mouse", "Ergonomic Mouse", "Gaming Mouse"),
     "attributes": ("ergonomic", "silent click", "rechargeable", "usb receiver", "bluetooth",
                    "adjustable dpi", "plug and play", "long battery life", "rgb lighting",
                    "portable", "left handed", "multi device", "non slip", "high precision"),
     "options": {"color": ("black", "white", "gray", "pink", "blue", "rose gold", "green")},
     "price": (8.0, 90.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} shape that supports your hand through long work days",
         "plug in the tiny receiver and your {noun} works instantly",
         "silent buttons that will not disturb anyone nearby",
         "switch between three devices with one button"),
     "uses": ("laptops", "the office", "gaming", "travel", "students")},
    # -- car --
    {"category": "electronics", "query": "car stereo",
     "breadcrumb": ("Electronics", "Car & Vehicle Electronics", "Car Electronics", "Car Audio",
                    "Car Stereo Receivers"),
     "nouns": ("Car Stereo", "Car Stereo Receiver", "Double Din Car Stereo", "Car Radio"),
     "attributes": ("touch screen", "bluetooth", "backup camera", "double din", "single din",
                    "fm radio", "usb port", "hands free", "mirror link", "high power",
                    "gps navigation", "steering wheel control", "easy to install",
                    "high quality"),
     "options": {},
     "price": (40.0, 400.0),
     "features": _ELECTRONICS_FEATURES + (
         "{attr} receiver with a bright 7 inch touch screen",
         "take calls hands free and stream music from your phone through your {noun}",
         "the backup camera input shows what is behind you when you reverse",
         "standard wiring harness for an easy install in most cars"),
     "uses": ("cars", "trucks", "road trips", "older vehicles")},
)

_FASHION_TYPES: tuple[dict[str, Any], ...] = (
    # -- shoes --
    {"category": "fashion", "query": "women's sandals",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Women", "Shoes", "Sandals"),
     "nouns": ("Sandals", "Flat Sandals", "Wedge Sandals", "Slide Sandals"),
     "attributes": ("open toe", "arch support", "ankle strap", "non slip", "rubber sole",
                    "memory foam", "comfortable", "lightweight", "high heel", "platform",
                    "adjustable buckle", "summer beach", "faux leather", "easy to wear"),
     "options": {"color": ("black", "white", "brown", "tan", "nude", "gold", "silver", "navy blue",
                           "leopard", "red"),
                 "size": _WOMEN_SHOE_SIZES},
     "price": (15.0, 90.0),
     "features": _FASHION_FEATURES + (
         "{attr} footbed that cushions every step",
         "the adjustable buckle lets you fit your {noun} just right",
         "flexible rubber outsole grips wet and dry surfaces",
         "dress them up for dinner or down for the beach"),
     "uses": ("women", "summer", "the beach", "walking", "daily wear")},
    {"category": "fashion", "query": "men's sneakers",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Men", "Shoes", "Fashion Sneakers"),
     "nouns": ("Sneakers", "Casual Sneakers", "Walking Shoes", "Slip On Sneakers"),
     "attributes": ("rubber sole", "non slip", "breathable", "lightweight", "memory foam",
                    "lace up", "slip on", "arch support", "mesh upper", "leather upper",
                    "cushioned insole", "wide width", "high top", "comfortable fit"),
     "options": {"color": ("black", "white", "gray", "navy", "all black", "white black", "khaki",
                           "olive"),
                 "size": _MEN_SHOE_SIZES},
     "price": (25.0, 120.0),
     "features": _FASHION_FEATURES + (
         "{attr} upper that keeps feet cool on warm days",
         "a cushioned insole makes your {noun} comfortable from the first wear",
         "durable rubber outsole with deep traction grooves",
         "clean, simple style that goes with jeans or chinos"),
     "uses": ("men", "walking", "casual wear", "work", "travel")},
    {"category": "fashion", "query": "women's running shoes",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Women", "Shoes", "Athletic", "Running"),
     "nouns": ("Running Shoes", "Athletic Shoes", "Trail Running Shoes", "Tennis Shoes"),
     "attributes": ("breathable mesh", "lightweight", "non slip", "arch support", "rubber sole",
                    "shock absorbing", "cushioned", "lace up", "memory foam", "wide toe box",
                    "reflective", "gym workout", "high performance", "machine washable"),
     "options": {"color": ("black", "white", "pink", "gray", "purple", "mint", "coral",
                           "navy blue", "black white"),
                 "size": _WOMEN_SHOE_SIZES},
     "price": (30.0, 140.0),
     "features": _FASHION_FEATURES + (
         "{attr} midsole that returns energy with every stride",
         "a knit upper hugs your foot so your {noun} feels like a sock",
         "reflective details keep you visible on early morning runs",
         "weighs under 8 ounces per shoe"),
     "uses": ("women", "running", "the gym", "walking", "tennis")},
    {"category": "fashion", "query": "women's boots",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Women", "Shoes", "Boots"),
     "nouns": ("Ankle Boots", "Knee High Boots", "Chelsea Boots", "Combat Boots"),
     "attributes": ("faux leather", "side zipper", "chunky heel", "block heel", "waterproof",
                    "faux fur lining", "non slip", "rubber sole", "pointed toe", "round toe",
                    "lace up", "high heel", "winter warm", "memory foam"),
     "options": {"color": ("black", "brown", "tan", "gray", "burgundy", "taupe", "olive green",
                           "camel"),
                 "size": _WOMEN_SHOE_SIZES},
     "price": (30.0, 130.0),
     "features": _FASHION_FEATURES + (
         "{attr} design that looks polished with jeans, skirts or dresses",
         "a side zipper makes your {noun} easy to pull on and off",
         "padded insole and a stable heel for all day walking",
         "treated upper wipes clean after rain or snow"),
     "uses": ("women", "winter", "fall", "work", "daily wear")},
    # -- tops --
    {"category": "fashion", "query": "men's dress shirts",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Men", "Clothing", "Shirts", "Dress Shirts"),
     "nouns": ("Dress Shirt", "Button Down Shirt", "Slim Fit Dress Shirt", "Formal Shirt"),
     "attributes": ("slim fit", "regular fit", "long sleeve", "wrinkle free", "button down",
                    "machine washable", "stretch fabric", "easy care", "spread collar",
                    "non iron", "cotton blend", "breathable", "classic fit", "short sleeve"),
     "options": {"color": ("white", "light blue", "black", "pink", "lavender", "navy blue", "gray",
                           "mint green", "burgundy"),
                 "size": ("small", "medium", "large", "x-large", "xx-large", "15 neck 32 sleeve",
                          "16 neck 34 sleeve", "17 neck 35 sleeve")},
     "price": (18.0, 70.0),
     "features": _FASHION_FEATURES + (
         "{attr} fabric that looks crisp straight out of the dryer",
         "a tailored cut keeps your {noun} neatly tucked all day",
         "stretch in the weave for easy movement at the desk",
         "reinforced buttons that will not pop off in the wash"),
     "uses": ("men", "work", "weddings", "business meetings", "the office")},
    {"category": "fashion", "query": "men's t-shirts",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Men", "Clothing", "Shirts", "T-Shirts"),
     "nouns": ("T-Shirt", "Crew Neck T-Shirt", "Graphic Tee", "Cotton T-Shirt"),
     "attributes": ("short sleeve", "long sleeve", "crew neck", "v neck", "cotton",
                    "moisture wicking", "machine wash", "classic fit", "slim fit", "tagless",
                    "pre shrunk", "big and tall", "soft fabric", "relaxed fit", "quick dry"),
     "options": {"color": _APPAREL_COLORS, "size": _APPAREL_SIZES},
     "price": (8.0, 35.0),
     "features": _FASHION_FEATURES + (
         "{attr} cotton jersey that gets softer with every wash",
         "a tagless neck keeps your {noun} itch free",
         "double needle hems so it keeps its shape",
         "layer it under a jacket or wear it on its own"),
     "uses": ("men", "workouts", "daily wear", "summer", "casual wear")},
    {"category": "fashion", "query": "women's blouses",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Women", "Clothing", "Tops, Tees & Blouses",
                    "Blouses & Button-Down Shirts"),
     "nouns": ("Blouse", "Chiffon Blouse", "Button Down Shirt", "Tunic Top"),
     "attributes": ("long sleeve", "short sleeve", "v neck", "loose fit", "chiffon",
                    "button down", "casual", "work office", "floral print", "lightweight",
                    "roll up sleeves", "machine washable", "ruffle trim", "peplum"),
     "options": {"color": ("white", "black", "apricot", "dusty blue", "wine red", "green",
                           "floral pink", "leopard", "beige", "navy"),
                 "size": _APPAREL_SIZES},
     "price": (15.0, 55.0),
     "features": _FASHION_FEATURES + (
         "{attr} fabric that drapes softly and never clings",
         "tuck your {noun} into trousers for work or wear it loose with jeans",
         "roll tab sleeves for a relaxed look on warm days"),
     "uses": ("women", "work", "casual wear", "spring", "summer")},
    {"category": "fashion", "query": "men's hoodies",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Men", "Clothing",
                    "Fashion Hoodies & Sweatshirts"),
     "nouns": ("Hoodie", "Pullover Hoodie", "Zip Up Hoodie", "Hooded Sweatshirt"),
     "attributes": ("fleece lined", "long sleeve", "kangaroo pocket", "drawstring hood",
                    "full zip", "machine washable", "soft cotton", "athletic fit", "heavyweight",
                    "relaxed fit", "ribbed cuffs", "warm winter", "big and tall", "quarter zip"),
     "options": {"color": _APPAREL_COLORS, "size": _APPAREL_SIZES},
     "price": (18.0, 65.0),
     "features": _FASHION_FEATURES + (
         "{attr} fleece that traps warmth on cold mornings",
         "a roomy kangaroo pocket on every {noun} keeps hands and phone warm",
         "ribbed cuffs and hem hold their shape wash after wash"),
     "uses": ("men", "winter", "workouts", "casual wear", "camping")},
    # -- bottoms, dresses and activewear --
    {"category": "fashion", "query": "women's jeans",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Women", "Clothing", "Jeans"),
     "nouns": ("Jeans", "Skinny Jeans", "High Waisted Jeans", "Straight Leg Jeans"),
     "attributes": ("high waist", "skinny fit", "straight leg", "stretch denim", "ripped",
                    "butt lifting", "machine washable", "wide leg", "button fly", "mid rise",
                    "bootcut", "slim fit", "relaxed fit", "comfort stretch"),
     "options": {"color": ("light wash", "medium wash", "dark wash", "black", "white", "gray",
                           "indigo", "vintage blue"),
                 "size": ("0", "2", "4", "6", "8", "10", "12", "14", "16", "small", "medium",
                          "large")},
     "price": (20.0, 80.0),
     "features": _FASHION_FEATURES + (
         "{attr} denim that moves with you and snaps back",
         "a contoured waistband keeps your {noun} from gapping at the back",
         "five pocket styling with a classic look",
         "holds its color wash after wash"),
     "uses": ("women", "daily wear", "casual wear", "work")},
    {"category": "fashion", "query": "men's jeans",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Men", "Clothing", "Jeans"),
     "nouns": ("Jeans", "Relaxed Fit Jeans", "Slim Fit Jeans", "Denim Jeans"),
     "attributes": ("regular fit", "slim fit", "relaxed fit", "straight leg", "stretch denim",
                    "machine washable", "classic", "five pocket", "button fly", "zip fly",
                    "athletic fit", "tapered leg", "big and tall", "durable"),
     "options": {"color": ("dark wash", "medium wash", "light wash", "black", "rinse", "gray",
                           "stonewash", "indigo"),
                 "size": ("30w x 30l", "30w x 32l", "32w x 30l", "32w x 32l", "34w x 32l",
                          "34w x 34l", "36w x 32l", "38w x 32l", "40w x 30l", "42w x 30l")},
     "price": (20.0, 75.0),
     "features": _FASHION_FEATURES + (
         "{attr} cut with room in the seat and thigh",
         "heavyweight denim makes your {noun} ready for work and weekends",
         "bar tacked pockets and a sturdy zip fly",
         "a touch of stretch for easy movement"),
     "uses": ("men", "work", "daily wear", "casual wear")},
    {"category": "fashion", "query": "women's dresses",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Women", "Clothing", "Dresses", "Casual"),
     "nouns": ("Dress", "Maxi Dress", "Midi Dress", "Sundress"),
     "attributes": ("short sleeve", "long sleeve", "v neck", "floral print", "loose fit",
                    "pockets", "elastic waist", "summer", "wrap style", "a line", "flowy",
                    "machine washable", "soft fabric", "wedding guest"),
     "options": {"color": ("black", "navy blue", "floral blue", "wine red", "green", "pink",
                           "yellow", "white", "leopard", "dusty rose"),
                 "size": _APPAREL_SIZES},
     "price": (20.0, 90.0),
     "features": _FASHION_FEATURES + (
         "{attr} silhouette that flatters every figure",
         "hidden side pockets make your {noun} as practical as it is pretty",
         "an elastic waist for a comfortable, easy fit",
         "pair it with sandals by day or heels at night"),
     "uses": ("women", "summer", "vacation", "weddings", "the office")},
    {"category": "fashion", "query": "women's leggings",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Women", "Clothing", "Active",
                    "Active Leggings"),
     "nouns": ("Leggings", "Yoga Pants", "Workout Leggings", "Capri Leggings"),
     "attributes": ("high waist", "tummy control", "squat proof", "moisture wicking",
                    "buttery soft", "four way stretch", "side pockets", "butt lift",
                    "compression", "non see through", "fleece lined", "machine washable",
                    "quick dry", "gym workout"),
     "options": {"color": ("black", "navy", "charcoal gray", "olive", "burgundy", "dusty pink",
                           "heather gray", "camo", "teal"),
                 "size": ("x-small", "small", "medium", "large", "x-large", "plus size 1x",
                          "plus size 2x")},
     "price": (12.0, 60.0),
     "features": _FASHION_FEATURES + (
         "{attr} waistband that stays put through squats and lunges",
         "side pockets on your {noun} hold a phone during runs",
         "opaque fabric you can bend in with confidence",
         "wicks sweat and dries fast"),
     "uses": ("women", "yoga", "running", "the gym", "lounging")},
    {"category": "fashion", "query": "women's swimsuits",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Women", "Clothing", "Swimsuits & Cover Ups",
                    "One-Piece Swimsuits"),
     "nouns": ("One Piece Swimsuit", "Bathing Suit", "Tankini Set", "Bikini Set"),
     "attributes": ("tummy control", "high waisted", "padded bra", "adjustable straps",
                    "quick dry", "chlorine resistant", "upf 50", "ruched", "push up",
                    "racerback", "slimming", "tie knot", "v neck", "plus size"),
     "options": {"color": ("black", "navy blue", "floral", "leopard", "coral", "teal", "red",
                           "white", "tropical print", "wine"),
                 "size": _APPAREL_SIZES},
     "price": (18.0, 70.0),
     "features": _FASHION_FEATURES + (
         "{attr} lining that smooths and supports",
         "removable pads and adjustable straps let you fit your {noun} perfectly",
         "chlorine resistant fabric keeps its color all summer"),
     "uses": ("women", "the beach", "the pool", "vacation", "swimming")},
    {"category": "fashion", "query": "men's socks",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Men", "Clothing", "Socks", "Athletic Socks"),
     "nouns": ("Athletic Socks", "Crew Socks", "Ankle Socks", "Dress Socks"),
     "attributes": ("cushioned", "moisture wicking", "arch support", "breathable",
                    "cotton blend", "no show", "compression", "odor resistant",
                    "reinforced heel", "machine washable", "non slip", "low cut",
                    "seamless toe", "durable"),
     "options": {"color": ("black", "white", "gray", "assorted", "navy", "multicolor",
                           "black white"),
                 "size": ("shoe size 6-9", "shoe size 9-12", "shoe size 12-15", "medium",
                          "large", "x-large"),
                 "number of items": ("3 pairs", "5 pairs", "6 pairs", "8 pairs", "10 pairs",
                                     "12 pairs")},
     "price": (8.0, 35.0),
     "features": _FASHION_FEATURES + (
         "{attr} knit that keeps feet dry through long days",
         "a cushioned sole makes your {noun} comfortable in boots and sneakers",
         "reinforced heel and toe for a longer life"),
     "uses": ("men", "running", "work boots", "hiking", "daily wear")},
    # -- jewelry, watches and bags --
    {"category": "fashion", "query": "women's necklaces",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Women", "Jewelry", "Necklaces", "Pendants"),
     "nouns": ("Pendant Necklace", "Necklace", "Layered Necklace", "Heart Necklace"),
     "attributes": ("gold plated", "sterling silver", "hypoallergenic", "nickel free",
                    "adjustable chain", "dainty", "gift box", "cubic zirconia", "rose gold",
                    "tarnish resistant", "minimalist", "handmade", "birthstone",
                    "high quality"),
     "options": {"color": ("gold", "silver", "rose gold", "white gold", "two tone", "black"),
                 "style": ("16 inch chain", "18 inch chain", "20 inch chain", "initial",
                           "heart", "star", "moon")},
     "price": (10.0, 120.0),
     "features": _FASHION_FEATURES + (
         "{attr} pendant that catches the light beautifully",
         "every {noun} arrives in a velvet gift box",
         "adjustable chain lets you wear it alone or layered",
         "safe for sensitive skin and made to last"),
     "uses": ("women", "girls", "mothers day", "anniversaries", "birthday gifts")},
    {"category": "fashion", "query": "men's watches",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Men", "Watches", "Wrist Watches"),
     "nouns": ("Wrist Watch", "Analog Watch", "Chronograph Watch", "Sports Watch"),
     "attributes": ("water resistant", "stainless steel", "leather strap", "chronograph",
                    "luminous hands", "date display", "quartz movement", "scratch resistant",
                    "minimalist", "large face", "gift box", "military", "business casual",
                    "waterproof"),
     "options": {},
     "price": (20.0, 300.0),
     "features": _FASHION_FEATURES + (
         "{attr} case with a sapphire coated crystal",
         "luminous hands make your {noun} easy to read in the dark",
         "accurate japanese quartz movement",
         "water resistant to 50 meters for hand washing and rain"),
     "uses": ("men", "business", "sports", "gifts", "daily wear")},
    {"category": "fashion", "query": "women's handbags",
     "breadcrumb": ("Clothing, Shoes & Jewelry", "Women", "Handbags & Wallets", "Shoulder Bags"),
     "nouns": ("Handbag", "Shoulder Bag", "Tote Bag", "Crossbody Bag"),
     "attributes": ("vegan leather", "large capacity", "adjustable strap", "zipper closure",
                    "multiple pockets", "waterproof", "lightweight", "top handle",
                    "gold hardware", "crossbody", "travel", "high quality", "durable",
                    "laptop sleeve"),
     "options": {"color": ("black", "brown", "tan", "beige", "burgundy", "green", "white",
                           "pink", "gray"),
                 "size": ("mini", "small", "medium", "large", "x-large", "oversized")},
     "price": (20.0, 150.0),
     "features": _FASHION_FEATURES + (
         "{attr} bag that fits a tablet, wallet and water bottle",
         "an inside zip pocket keeps the small things in your {noun} organized",
         "a detachable strap lets you carry it by hand or on the shoulder"),
     "uses": ("women", "work", "travel", "school", "shopping")},
)

_FOOD_TYPES: tuple[dict[str, Any], ...] = (
    # -- snacks --
    {"category": "food", "query": "granola bars",
     "breadcrumb": ("Grocery & Gourmet Food", "Snack Foods", "Bars", "Granola Bars"),
     "nouns": ("Granola Bars", "Chewy Granola Bars", "Oat Bars", "Granola Bar Variety Pack"),
     "attributes": ("gluten free", "non gmo", "whole grain", "low sugar", "high protein",
                    "individually wrapped", "kosher", "vegan", "nut free",
                    "natural ingredients", "high fiber", "organic", "plant based",
                    "on the go"),
     "options": {"flavor name": ("chocolate chip", "peanut butter", "oats and honey",
                                 "dark chocolate", "almond", "blueberry", "cranberry almond",
                                 "variety pack", "sea salt caramel"),
                 "number of items": ("6 count", "12 count", "18 count", "24 count", "36 count",
                                     "48 count")},
     "price": (4.0, 30.0),
     "features": _FOOD_FEATURES + (
         "{attr} bars baked with whole rolled oats and real honey",
         "each {noun} is individually wrapped for lunch boxes and gym bags",
         "7 grams of whole grains in every bar",
         "no artificial flavors, colors or preservatives"),
     "uses": ("kids", "snacking", "school lunches", "hiking", "breakfast")},
    {"category": "food", "query": "protein bars",
     "breadcrumb": ("Grocery & Gourmet Food", "Snack Foods", "Bars", "Protein Bars"),
     "nouns": ("Protein Bars", "Keto Protein Bars", "Nutrition Bars", "Energy Bars"),
     "attributes": ("high protein", "low carb", "keto friendly", "gluten free", "sugar free",
                    "low calorie", "non gmo", "plant based", "whey protein",
                    "no artificial flavors", "individually wrapped", "soy free", "vegan",
                    "high fiber"),
     "options": {"flavor name": ("chocolate peanut butter", "cookie dough", "birthday cake",
                                 "salted caramel", "chocolate brownie", "cookies and cream",
                                 "lemon", "mint chocolate", "variety pack"),
                 "number of items": ("4 count", "12 count", "15 count", "18 count", "24 count",
                                     "12 count pack of 2")},
     "price": (8.0, 45.0),
     "features": _FOOD_FEATURES + (
         "{attr} bars with 20 grams of protein each",
         "only 2 grams of net carbs in each {noun}",
         "a soft, chewy texture that tastes like dessert",
         "a smart snack before or after a workout"),
     "uses": ("workouts", "weight loss", "snacking", "busy mornings", "travel")},
    {"category": "food", "query": "potato chips",
     "breadcrumb": ("Grocery & Gourmet Food", "Snack Foods", "Chips & Crisps", "Potato Chips"),
     "nouns": ("Potato Chips", "Kettle Cooked Chips", "Baked Chips", "Chips Variety Pack"),
     "attributes": ("gluten free", "non gmo", "kettle cooked", "baked", "low sodium",
                    "no trans fat", "vegan", "snack size", "family size",
                    "individually wrapped", "crunchy", "avocado oil", "resealable bag",
                    "kosher"),
     "options": {"flavor name": ("sea salt", "salt and vinegar", "barbecue",
                                 "sour cream and onion", "jalapeno", "cheddar", "dill pickle",
                                 "original", "sweet chili"),
                 "size": ("1 ounce", "1.5 ounce", "2 ounce", "5 ounce", "8 ounce", "13 ounce"),
                 "item package quantity": ("pack of 1", "pack of 4", "pack of 6", "pack of 12",
                                           "pack of 24", "pack of 40")},
     "price": (3.0, 35.0),
     "features": _FOOD_FEATURES + (
         "{attr} chips cooked in small batches for extra crunch",
         "thick cut potatoes give every {noun} bag a hearty bite",
         "seasoned with real spices, never msg"),
     "uses": ("parties", "lunch boxes", "snacking", "game day", "road trips")},
    {"category": "food", "query": "mixed nuts",
     "breadcrumb": ("Grocery & Gourmet Food", "Snack Foods", "Nuts & Seeds", "Mixed Nuts"),
     "nouns": ("Mixed Nuts", "Deluxe Mixed Nuts", "Trail Mix", "Snack Mix"),
     "attributes": ("roasted", "unsalted", "lightly salted", "raw", "keto friendly",
                    "high protein", "gluten free", "non gmo", "resealable bag", "kosher",
                    "heart healthy", "no added sugar", "vegan", "plant based"),
     "options": {"flavor name": ("sea salt", "honey roasted", "wasabi", "smoked", "cajun spice",
                                 "unsalted", "cinnamon", "dark chocolate"),
                 "size": ("8 ounce", "12 ounce", "16 ounce", "1 pound", "2 pound", "2.5 pound",
                          "3 pound")},
     "price": (6.0, 40.0),
     "features": _FOOD_FEATURES + (
         "{attr} blend of cashews, almonds, pecans and brazil nuts",
         "a resealable bag keeps your {noun} fresh and crunchy",
         "a good source of plant protein and healthy fats"),
     "uses": ("snacking", "parties", "hiking", "the office", "gift baskets")},
    {"category": "food", "query": "beef jerky",
     "breadcrumb": ("Grocery & Gourmet Food", "Snack Foods", "Jerky & Dried Meats", "Jerky"),
     "nouns": ("Beef Jerky", "Jerky", "Meat Sticks", "Turkey Jerky"),
     "attributes": ("high protein", "low fat", "keto friendly", "gluten free", "grass fed",
                    "no preservatives", "low sugar", "msg free", "individually wrapped",
                    "resealable bag", "hickory smoked", "tender cut", "paleo friendly",
                    "no nitrites"),
     "options": {"flavor name": ("original", "teriyaki", "peppered", "sweet and spicy",
                                 "hickory", "jalapeno", "sriracha", "honey bbq",
                                 "garlic pepper"),
                 "size": ("2.85 ounce", "3.25 ounce", "8 ounce", "10 ounce", "16 ounce",
                          "1 ounce pack of 8")},
     "price": (5.0, 45.0),
     "features": _FOOD_FEATURES + (
         "{attr} jerky sliced from whole cuts of beef",
         "slow smoked over hickory so every {noun} piece is tender",
         "12 grams of protein per serving"),
     "uses": ("hiking", "road trips", "snacking", "camping", "workouts")},
    # -- beverages --
    {"category": "food", "query": "ground coffee",
     "breadcrumb": ("Grocery & Gourmet Food", "Beverages", "Coffee, Tea & Cocoa", "Coffee",
                    "Ground Coffee"),
     "nouns": ("Ground Coffee", "Coffee", "Medium Roast Coffee", "Dark Roast Coffee"),
     "attributes": ("medium roast", "dark roast", "light roast", "decaf", "organic",
                    "fair trade", "arabica", "single origin", "low acid", "kosher",
                    "small batch", "non gmo", "bold flavor", "smooth taste"),
     "options": {"flavor name": ("breakfast blend", "french roast", "colombian", "hazelnut",
                                 "vanilla", "caramel", "house blend", "espresso", "mocha"),
                 "size": ("10 ounce", "12 ounce", "16 ounce", "24 ounce", "32 ounce",
                          "2 pound", "5 pound")},
     "price": (7.0, 45.0),
     "features": _FOOD_FEATURES + (
         "{attr} beans roasted in small batches for peak flavor",
         "ground for drip machines, pour over and french press, so your {noun} works anywhere",
         "notes of cocoa, caramel and toasted nuts",
         "sealed with a one way valve to lock in freshness"),
     "uses": ("drip coffee makers", "french press", "the office", "mornings")},
    {"category": "food", "query": "herbal tea",
     "breadcrumb": ("Grocery & Gourmet Food", "Beverages", "Coffee, Tea & Cocoa", "Tea", "Herbal"),
     "nouns": ("Herbal Tea", "Tea Bags", "Caffeine Free Tea", "Loose Leaf Tea"),
     "attributes": ("caffeine free", "organic", "non gmo", "individually wrapped",
                    "loose leaf", "gluten free", "kosher", "sugar free",
                    "natural ingredients", "sleep aid", "digestive support",
                    "immune support", "compostable bags", "gift box"),
     "options": {"flavor name": ("chamomile", "peppermint", "rooibos chai", "lemon ginger",
                                 "hibiscus", "lavender", "turmeric ginger", "green tea mint",
                                 "berry blend", "cinnamon spice"),
                 "number of items": ("15 count", "20 count", "40 count", "80 count", "100 count",
                                     "20 count pack of 6")},
     "price": (4.0, 35.0),
     "features": _FOOD_FEATURES + (
         "{attr} herbs blended for a calm, soothing cup",
         "steep your {noun} for five minutes in freshly boiled water",
         "each bag is wrapped to keep the aroma in",
         "delicious hot or poured over ice"),
     "uses": ("bedtime", "relaxing", "digestion", "gift giving", "cold days")},
    {"category": "food", "query": "sparkling water",
     "breadcrumb": ("Grocery & Gourmet Food", "Beverages", "Water", "Sparkling Water"),
     "nouns": ("Sparkling Water", "Seltzer Water", "Flavored Sparkling Water", "Mineral Water"),
     "attributes": ("zero calories", "sugar free", "no sweeteners", "natural flavors",
                    "caffeine free", "sodium free", "non gmo", "bpa free", "gluten free",
                    "kosher", "vegan", "keto friendly", "naturally essenced",
                    "recyclable cans"),
     "options": {"flavor name": ("lime", "lemon", "grapefruit", "black cherry", "watermelon",
                                 "peach", "mango", "original", "raspberry lime"),
                 "size": ("8 fl oz", "12 fl oz", "16.9 fl oz", "25 fl oz", "33.8 fl oz",
                          "1 liter"),
                 "item package quantity": ("pack of 6", "pack of 8", "pack of 12", "pack of 18",
                                           "pack of 24", "pack of 36")},
     "price": (4.0, 30.0),
     "features": _FOOD_FEATURES + (
         "{attr} bubbles with a crisp, clean finish",
         "a refreshing {noun} with zero calories and zero sugar",
         "tastes best ice cold, straight from the can"),
     "uses": ("hydration", "parties", "mixing drinks", "lunch boxes")},
    # -- candy --
    {"category": "food", "query": "chocolate bars",
     "breadcrumb": ("Grocery & Gourmet Food", "Candy & Chocolate", "Chocolate", "Chocolate Bars"),
     "nouns": ("Chocolate Bars", "Dark Chocolate Bar", "Milk Chocolate Bar", "Chocolate Gift Box"),
     "attributes": ("dark chocolate", "milk chocolate", "sugar free", "keto friendly",
                    "fair trade", "organic", "dairy free", "vegan", "gluten free",
                    "individually wrapped", "gift box", "non gmo", "valentines day",
                    "high cacao"),
     "options": {"flavor name": ("sea salt", "almond", "caramel", "mint", "raspberry", "orange",
                                 "toffee", "hazelnut", "70 percent cacao"),
                 "item package quantity": _PACKS},
     "price": (4.0, 40.0),
     "features": _FOOD_FEATURES + (
         "{attr} chocolate made from ethically sourced cacao",
         "each {noun} snaps cleanly and melts slowly on the tongue",
         "wrapped in foil to lock in flavor",
         "a thoughtful gift for anyone with a sweet tooth"),
     "uses": ("gift giving", "valentines day", "birthdays", "snacking", "baking")},
    {"category": "food", "query": "gummy candy",
     "breadcrumb": ("Grocery & Gourmet Food", "Candy & Chocolate", "Gummy Candies"),
     "nouns": ("Gummy Candy", "Gummy Bears", "Sour Gummies", "Fruit Snacks"),
     "attributes": ("fat free", "gluten free", "vegan", "gelatin free", "sugar free",
                    "real fruit juice", "individually wrapped", "party favors", "kosher",
                    "low calorie", "no artificial colors", "non gmo", "resealable bag",
                    "bulk candy"),
     "options": {"flavor name": ("assorted fruit", "sour", "cherry", "watermelon", "peach rings",
                                 "cola", "tropical", "strawberry", "blue raspberry"),
                 "size": ("5 ounce", "8 ounce", "16 ounce", "2 pound", "5 pound",
                          "0.8 ounce pack of 40")},
     "price": (4.0, 30.0),
     "features": _FOOD_FEATURES + (
         "{attr} gummies made with real fruit juice",
         "soft and chewy {noun} in bright, bold flavors",
         "a bulk bag that is perfect for sharing"),
     "uses": ("kids", "parties", "halloween", "movie night")},
    # -- pantry --
    {"category": "food", "query": "pasta",
     "breadcrumb": ("Grocery & Gourmet Food", "Pantry Staples", "Pasta & Noodles", "Dried Pasta"),
     "nouns": ("Pasta", "Spaghetti", "Penne Pasta", "Elbow Macaroni"),
     "attributes": ("gluten free", "whole wheat", "non gmo", "high protein", "organic",
                    "low carb", "vegan", "bronze cut", "durum wheat", "quick cooking",
                    "chickpea based", "kosher", "high fiber", "lentil based"),
     "options": {"style": ("spaghetti", "penne", "rotini", "fusilli", "elbows", "linguine",
                           "lasagna", "rigatoni"),
                 "size": ("8 ounce", "12 ounce", "16 ounce", "1 pound pack of 4",
                          "1 pound pack of 6", "2 pound")},
     "price": (3.0, 30.0),
     "features": _FOOD_FEATURES + (
         "{attr} pasta that holds sauce beautifully",
         "cook your {noun} in 8 to 10 minutes for a perfect al dente bite",
         "bronze die cut for a rough, sauce loving texture"),
     "uses": ("weeknight dinners", "meal prep", "families", "pasta salad")},
    {"category": "food", "query": "olive oil",
     "breadcrumb": ("Grocery & Gourmet Food", "Pantry Staples", "Oils, Vinegars & Sprays", "Oils",
                    "Olive Oil"),
     "nouns": ("Extra Virgin Olive Oil", "Olive Oil", "Olive Oil Spray"),
     "attributes": ("extra virgin", "cold pressed", "organic", "non gmo", "single origin",
                    "kosher", "high polyphenol", "glass bottle", "keto friendly",
                    "gluten free", "heart healthy", "unfiltered", "mild flavor",
                    "award winning"),
     "options": {},
     "price": (8.0, 60.0),
     "features": _FOOD_FEATURES + (
         "{attr} oil pressed within hours of harvest",
         "a fruity, peppery {noun} that shines in dressings and drizzles",
         "dark glass bottle protects the oil from light",
         "harvested and bottled at a single family estate"),
     "uses": ("cooking", "salad dressing", "baking", "dipping bread")},
    {"category": "food", "query": "hot sauce",
     "breadcrumb": ("Grocery & Gourmet Food", "Pantry Staples", "Sauces, Gravies & Marinades",
                    "Hot Sauce"),
     "nouns": ("Hot Sauce", "Hot Sauce Gift Set", "Chili Sauce", "Pepper Sauce"),
     "attributes": ("extra hot", "mild", "gluten free", "vegan", "keto friendly", "sugar free",
                    "all natural", "small batch", "fermented", "no preservatives",
                    "low sodium", "gift set", "habanero", "smoky flavor"),
     "options": {},
     "price": (4.0, 40.0),
     "features": _FOOD_FEATURES + (
         "{attr} sauce aged for weeks for a deep, complex heat",
         "a few dashes of {noun} wake up eggs, tacos and wings",
         "made in small batches from fresh peppers"),
     "uses": ("tacos", "wings", "chili lovers", "gift giving")},
    {"category": "food", "query": "seasoning blend",
     "breadcrumb": ("Grocery & Gourmet Food", "Pantry Staples", "Herbs, Spices & Seasonings",
                    "Mixed Spices & Seasonings"),
     "nouns": ("Seasoning Blend", "Spice Blend", "Seasoning Mix", "Dry Rub"),
     "attributes": ("salt free", "msg free", "gluten free", "non gmo", "organic",
                    "keto friendly", "low sodium", "all natural", "kosher", "no fillers",
                    "bbq rub", "sugar free", "gift set", "vegan"),
     "options": {"flavor name": ("garlic herb", "lemon pepper", "cajun", "taco",
                                 "everything bagel", "italian", "smoky chipotle", "steak",
                                 "ranch"),
                 "size": ("2 ounce", "3 ounce", "4.5 ounce", "6 ounce", "12 ounce", "16 ounce")},
     "price": (4.0, 28.0),
     "features": _FOOD_FEATURES + (
         "{attr} blend of herbs and spices ground fresh",
         "sprinkle your {noun} on chicken, fish, vegetables or popcorn",
         "a shaker top for easy, even seasoning"),
     "uses": ("grilling", "roasting vegetables", "meal prep", "gift giving")},
    {"category": "food", "query": "breakfast cereal",
     "breadcrumb": ("Grocery & Gourmet Food", "Breakfast Foods", "Cereals", "Cold Cereals"),
     "nouns": ("Breakfast Cereal", "Granola Cereal", "Cereal", "Muesli"),
     "attributes": ("whole grain", "high fiber", "high protein", "low sugar", "gluten free",
                    "non gmo", "organic", "keto friendly", "heart healthy", "vegan",
                    "no artificial flavors", "kid friendly", "plant based", "family size"),
     "options": {"flavor name": ("honey almond", "cinnamon", "berry", "chocolate", "maple pecan",
                                 "original", "fruity", "peanut butter"),
                 "size": ("8 ounce", "10 ounce", "12 ounce", "14 ounce", "18 ounce", "2 pound")},
     "price": (4.0, 30.0),
     "features": _FOOD_FEATURES + (
         "{attr} clusters that stay crunchy in milk",
         "enjoy your {noun} with milk, yogurt or straight from the box",
         "10 grams of protein per serving to keep you full until lunch"),
     "uses": ("breakfast", "kids", "snacking", "families")},
    {"category": "food", "query": "peanut butter",
     "breadcrumb": ("Grocery & Gourmet Food", "Pantry Staples", "Jams, Jellies & Sweet Spreads",
                    "Nut & Seed Butters", "Peanut Butter"),
     "nouns": ("Peanut Butter", "Creamy Peanut Butter", "Natural Peanut Butter",
               "Peanut Butter Powder"),
     "attributes": ("no added sugar", "non gmo", "gluten free", "high protein",
                    "keto friendly", "vegan", "palm oil free", "organic", "creamy", "crunchy",
                    "no stir", "salt free", "kosher", "plant based"),
     "options": {"flavor name": ("creamy", "crunchy", "honey roasted", "chocolate", "maple",
                                 "cinnamon raisin", "unsalted"),
                 "size": ("6.5 ounce", "12 ounce", "16 ounce", "26.5 ounce", "28 ounce",
                          "40 ounce")},
     "price": (4.0, 25.0),
     "features": _FOOD_FEATURES + (
         "{attr} spread made from just roasted peanuts and a pinch of salt",
         "stir once and your {noun} stays smooth in the fridge",
         "7 grams of protein in every two tablespoon serving"),
     "uses": ("sandwiches", "smoothies", "baking", "kids")},
    {"category": "food", "query": "cupcake toppers",
     "breadcrumb": ("Grocery & Gourmet Food", "Pantry Staples", "Cooking & Baking",
                    "Frosting, Icing & Decorations", "Cake Toppers"),
     "nouns": ("Cupcake Toppers", "Cake Toppers", "Cupcake Picks", "Cake Topper Set"),
     "attributes": ("birthday party", "baby shower", "gold glitter", "food safe",
                    "easy to use", "high quality", "double sided", "wedding", "graduation",
                    "gender reveal", "bridal shower", "party favors", "reusable",
                    "handmade"),
     "options": {"color": ("gold", "silver", "rose gold", "pink", "blue", "black", "multicolor"),
                 "number of items": ("12 pieces", "24 pieces", "36 pieces", "48 pieces",
                                     "50 pieces", "72 pieces")},
     "price": (4.0, 18.0),
     "features": (  # party supplies, so not the shared food bullets
         "{attr} toppers that make any dessert table look professional",
         "arrives flat packed and ready to use, with no assembly needed",
         "each {noun} pick is food safe and sturdy enough for thick frosting",
         "double sided glitter that sparkles from every angle",
         "if any {noun} arrives bent, message us for a free replacement"),
     "uses": ("birthday cakes", "baby showers", "weddings", "party decorations")},
)

_FURNITURE_TYPES: tuple[dict[str, Any], ...] = (
    # -- living room --
    {"category": "furniture", "query": "coffee table",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Living Room Furniture", "Tables",
                    "Coffee Tables"),
     "nouns": ("Coffee Table", "Lift Top Coffee Table", "Round Coffee Table", "Cocktail Table"),
     "attributes": ("solid wood", "easy assemble", "storage shelf", "lift top", "mid century",
                    "tempered glass", "metal frame", "rustic", "modern", "living room",
                    "hidden storage", "space saving", "sturdy", "high gloss"),
     "options": {"color": _WOOD_FINISHES,
                 "style": ("rectangle", "round", "oval", "square", "nesting set", "lift top")},
     "price": (50.0, 400.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} top that is large enough for board games and snacks",
         "a lower shelf under your {noun} keeps remotes and magazines handy",
         "assembles in about 20 minutes with the included tools",
         "water resistant finish wipes clean with a damp cloth"),
     "uses": ("living rooms", "small apartments", "family rooms", "offices")},
    {"category": "furniture", "query": "end table",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Living Room Furniture", "Tables", "End Tables"),
     "nouns": ("End Table", "Side Table", "Accent Table", "C Shaped End Table"),
     "attributes": ("solid wood", "easy assemble", "charging station", "storage drawer",
                    "small space", "metal frame", "sofa side", "set of 2", "mid century",
                    "rustic", "living room", "open shelf", "sturdy", "fabric drawer"),
     "options": {"color": _WOOD_FINISHES,
                 "style": ("round", "square", "c shaped", "with drawer", "with shelf",
                           "with charging station", "nesting")},
     "price": (25.0, 180.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} table that tucks neatly beside a sofa or bed",
         "built in usb ports let your {noun} charge phones overnight",
         "a drawer and an open shelf keep clutter out of sight"),
     "uses": ("living rooms", "bedrooms", "small spaces", "reading nooks")},
    {"category": "furniture", "query": "tv stand",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Living Room Furniture",
                    "Television Stands & Entertainment Centers"),
     "nouns": ("TV Stand", "Entertainment Center", "TV Console", "Media Console"),
     "attributes": ("storage cabinet", "open shelves", "cable management", "easy assemble",
                    "led lights", "solid wood", "engineered wood", "farmhouse", "mid century",
                    "living room", "sliding barn door", "high gloss", "corner unit", "sturdy"),
     "options": {"color": _WOOD_FINISHES,
                 "size": ("47 inch", "55 inch", "60 inch", "65 inch", "70 inch", "80 inch")},
     "price": (60.0, 450.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} console that holds tvs up to 75 inches",
         "cable holes in the back of your {noun} keep wires out of sight",
         "adjustable shelves fit game consoles and sound bars",
         "sliding doors hide clutter while keeping remotes working"),
     "uses": ("living rooms", "bedrooms", "game rooms", "flat screen tvs")},
    {"category": "furniture", "query": "sofa",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Living Room Furniture", "Sofas & Couches"),
     "nouns": ("Sofa", "Sectional Sofa", "Loveseat", "Sleeper Sofa"),
     "attributes": ("living room", "memory foam", "easy assemble", "velvet", "faux leather",
                    "solid wood", "mid century", "convertible", "removable cushions",
                    "small space", "reversible chaise", "high density foam", "tufted",
                    "storage ottoman", "modern"),
     "options": {"color": ("dark gray", "light gray", "navy blue", "beige", "green velvet",
                           "black", "cream", "brown", "teal"),
                 "style": ("loveseat", "3 seater", "sectional", "l shaped", "sleeper",
                           "modular 6 piece")},
     "price": (200.0, 600.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} cushions that stay plush year after year",
         "the reversible chaise lets you set up your {noun} on either side",
         "arrives in boxes and assembles without tools in 15 minutes",
         "solid hardwood frame supports up to 900 pounds"),
     "uses": ("living rooms", "apartments", "family rooms", "guest rooms")},
    {"category": "furniture", "query": "accent chair",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Living Room Furniture", "Chairs"),
     "nouns": ("Accent Chair", "Armchair", "Club Chair", "Barrel Chair"),
     "attributes": ("mid century", "upholstered", "velvet", "solid wood legs", "living room",
                    "tufted back", "swivel", "easy assemble", "comfy", "high back",
                    "linen fabric", "metal legs", "reading nook", "set of 2"),
     "options": {"color": ("gray", "green", "mustard yellow", "navy", "cream", "pink", "blue",
                           "teal", "brown leather")},
     "price": (80.0, 400.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} chair with a deep seat made for curling up",
         "tapered legs give your {noun} a light, airy look",
         "high density foam keeps its shape after years of use"),
     "uses": ("living rooms", "bedrooms", "reading corners", "offices")},
    # -- home office --
    {"category": "furniture", "query": "bookshelf",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Home Office Furniture", "Bookcases"),
     "nouns": ("Bookshelf", "Bookcase", "Ladder Shelf", "Display Shelf"),
     "attributes": ("5 tier", "open shelf", "industrial", "solid wood", "easy assemble",
                    "metal frame", "anti tip", "home office", "living room", "corner unit",
                    "adjustable shelves", "space saving", "sturdy", "storage cabinet"),
     "options": {"color": _WOOD_FINISHES,
                 "size": ("3 tier", "4 tier", "5 tier", "6 tier", "small", "large")},
     "price": (40.0, 300.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} shelves that each hold up to 50 pounds",
         "an anti tip kit anchors your {noun} safely to the wall",
         "open design shows off books, plants and photos"),
     "uses": ("home offices", "living rooms", "kids rooms", "bedrooms")},
    {"category": "furniture", "query": "office chair",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Home Office Furniture", "Home Office Chairs",
                    "Desk Chairs"),
     "nouns": ("Office Chair", "Desk Chair", "Ergonomic Chair", "Gaming Chair"),
     "attributes": ("lumbar support", "ergonomic", "adjustable height", "swivel", "mesh back",
                    "padded armrest", "high back", "headrest", "memory foam",
                    "rolling wheels", "easy assemble", "pu leather", "reclining",
                    "heavy duty"),
     "options": {"color": ("black", "gray", "white", "blue", "pink", "brown", "red")},
     "price": (60.0, 450.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} backrest that follows the curve of your spine",
         "adjust the seat height of your {noun} with one lever",
         "quiet casters roll smoothly on carpet and hard floors",
         "breathable mesh keeps you cool through long meetings"),
     "uses": ("home offices", "gaming", "students", "long work days")},
    {"category": "furniture", "query": "computer desk",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Home Office Furniture", "Home Office Desks"),
     "nouns": ("Computer Desk", "Writing Desk", "Standing Desk", "L Shaped Desk"),
     "attributes": ("height adjustable", "storage drawers", "easy assemble", "metal frame",
                    "small space", "home office", "monitor shelf", "cable management",
                    "solid wood", "l shaped", "keyboard tray", "headphone hook", "sturdy",
                    "space saving"),
     "options": {"color": _WOOD_FINISHES,
                 "size": ("32 inch", "40 inch", "47 inch", "55 inch", "60 inch", "63 inch")},
     "price": (60.0, 500.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} desk with room for two monitors",
         "a raised shelf brings the screen on your {noun} up to eye level",
         "steel frame with adjustable feet stays steady on uneven floors"),
     "uses": ("home offices", "students", "gaming", "small spaces")},
    # -- bedroom --
    {"category": "furniture", "query": "bed frame",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Bedroom Furniture", "Beds, Frames & Bases",
                    "Beds"),
     "nouns": ("Bed Frame", "Platform Bed", "Upholstered Bed", "Loft Bed"),
     "attributes": ("queen size", "king size", "twin size", "full size", "box spring",
                    "wood slats", "upholstered headboard", "storage drawers",
                    "easy assemble", "metal frame", "noise free", "solid wood",
                    "under bed storage", "heavy duty"),
     "options": {"color": ("black", "white", "gray", "espresso", "walnut", "navy velvet",
                           "beige linen"),
                 "size": ("twin", "twin xl", "full", "queen", "king", "california king")},
     "price": (120.0, 600.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} slats support a mattress without a box spring",
         "13 inches of clearance under your {noun} for storage bins",
         "the padded headboard makes reading in bed comfortable",
         "no squeaks thanks to reinforced joints"),
     "uses": ("bedrooms", "guest rooms", "kids rooms", "dorms")},
    {"category": "furniture", "query": "nightstand",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Bedroom Furniture", "Nightstands"),
     "nouns": ("Nightstand", "Bedside Table", "Night Stand with Drawers"),
     "attributes": ("storage drawers", "charging station", "solid wood", "easy assemble",
                    "open shelf", "small space", "mid century", "farmhouse", "floating",
                    "led light", "set of 2", "bedroom", "sturdy", "modern"),
     "options": {},
     "price": (30.0, 220.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} nightstand sized for a lamp, a book and a glass of water",
         "smooth gliding drawers in your {noun} keep bedtime essentials close",
         "a built in outlet charges phones overnight"),
     "uses": ("bedrooms", "guest rooms", "small spaces", "dorms")},
    {"category": "furniture", "query": "dresser",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Bedroom Furniture", "Dressers"),
     "nouns": ("Dresser", "Chest of Drawers", "Dresser with Mirror", "Tall Dresser"),
     "attributes": ("6 drawer", "solid wood", "easy assemble", "anti tip", "smooth glide",
                    "metal handles", "fabric drawers", "bedroom", "storage space",
                    "mid century", "farmhouse", "closet", "kids room", "sturdy"),
     "options": {"color": _WOOD_FINISHES,
                 "style": ("3 drawer", "4 drawer", "5 drawer", "6 drawer", "7 drawer",
                           "9 drawer")},
     "price": (80.0, 550.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} drawers that open smoothly on metal runners",
         "an anti tip kit keeps your {noun} safe around children",
         "deep drawers hold sweaters, jeans and bedding"),
     "uses": ("bedrooms", "closets", "kids rooms", "nurseries")},
    # -- kitchen and dining --
    {"category": "furniture", "query": "dining table",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Kitchen & Dining Room Furniture", "Tables"),
     "nouns": ("Dining Table", "Kitchen Table", "Dining Table Set", "Farmhouse Table"),
     "attributes": ("solid wood", "dining room", "extendable", "easy assemble", "seats 4",
                    "seats 6", "round", "rectangular", "metal legs", "small space",
                    "farmhouse", "counter height", "mid century", "drop leaf"),
     "options": {"color": _WOOD_FINISHES,
                 "style": ("table only", "5 piece set", "7 piece set", "with bench",
                           "round 42 inch", "rectangle 60 inch")},
     "price": (100.0, 600.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} tabletop that seats the whole family",
         "a sealed finish protects your {noun} from spills and scratches",
         "sturdy legs with floor protectors keep it level"),
     "uses": ("dining rooms", "kitchens", "small apartments", "families")},
    {"category": "furniture", "query": "dining chairs",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Kitchen & Dining Room Furniture", "Chairs"),
     "nouns": ("Dining Chairs", "Kitchen Chairs", "Upholstered Dining Chairs", "Side Chairs"),
     "attributes": ("set of 4", "upholstered", "solid wood legs", "dining room",
                    "easy assemble", "mid century", "armless", "velvet", "faux leather",
                    "high back", "metal frame", "stackable", "wipe clean", "padded seat"),
     "options": {"color": ("gray", "beige", "black", "green velvet", "navy", "white", "brown",
                           "pink"),
                 "item package quantity": ("pack of 1", "set of 2", "set of 3", "set of 4",
                                           "set of 6", "pack of 8")},
     "price": (60.0, 400.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} seat that stays comfortable through long dinners",
         "each {noun} holds up to 300 pounds",
         "easy to wipe down after meals"),
     "uses": ("dining rooms", "kitchens", "restaurants", "home offices")},
    {"category": "furniture", "query": "bar stools",
     "breadcrumb": ("Home & Kitchen", "Furniture", "Kitchen & Dining Room Furniture", "Barstools"),
     "nouns": ("Bar Stools", "Counter Stools", "Counter Height Bar Stools", "Swivel Bar Stools"),
     "attributes": ("counter height", "bar height", "swivel", "adjustable height", "backrest",
                    "footrest", "set of 2", "faux leather", "metal frame", "solid wood",
                    "kitchen island", "easy assemble", "armless", "upholstered"),
     "options": {"color": ("black", "gray", "white", "brown", "natural", "green", "navy"),
                 "size": ("24 inch", "26 inch", "28 inch", "29 inch", "30 inch", "32 inch")},
     "price": (50.0, 350.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} stools that turn a kitchen island into a breakfast bar",
         "a gas lift lets you raise or lower each {noun} in seconds",
         "a built in footrest for comfortable perching"),
     "uses": ("kitchen islands", "home bars", "pubs", "counters")},
    # -- storage and decor --
    {"category": "furniture", "query": "shoe rack",
     "breadcrumb": ("Home & Kitchen", "Storage & Organization", "Clothing & Closet Storage",
                    "Shoe Organizers"),
     "nouns": ("Shoe Rack", "Shoe Organizer", "Shoe Storage Cabinet", "Shoe Bench"),
     "attributes": ("stackable", "easy assemble", "metal frame", "space saving", "entryway",
                    "bamboo", "large capacity", "closet", "non woven fabric",
                    "free standing", "narrow", "10 tier", "dustproof cover", "sturdy"),
     "options": {},
     "price": (15.0, 120.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} rack that holds up to 50 pairs",
         "snap your {noun} together in minutes, no tools required",
         "slim design fits behind doors and in narrow closets"),
     "uses": ("entryways", "closets", "garages", "dorm rooms")},
    {"category": "furniture", "query": "area rug",
     "breadcrumb": ("Home & Kitchen", "Home Decor Products", "Rugs, Pads & Protectors",
                    "Area Rugs"),
     "nouns": ("Area Rug", "Rug", "Runner Rug", "Shag Rug"),
     "attributes": ("non slip", "machine washable", "living room", "bedroom", "low pile",
                    "high pile", "stain resistant", "soft shag", "pet friendly",
                    "easy to clean", "boho", "vintage", "modern geometric", "kids room",
                    "non shedding"),
     "options": {"color": ("gray", "beige", "navy", "multicolor", "cream", "blue", "terracotta",
                           "black and white"),
                 "pattern name": ("medallion", "moroccan trellis", "abstract", "geometric",
                                  "vintage floral", "solid", "striped"),
                 "size": ("2 x 3", "3 x 5", "4 x 6", "5 x 7", "6 x 9", "8 x 10",
                          "2 x 6 runner")},
     "price": (20.0, 400.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} rug that softens hard floors underfoot",
         "toss your {noun} in the washing machine when spills happen",
         "a grippy backing keeps it flat and in place",
         "low profile pile slides easily under doors"),
     "uses": ("living rooms", "bedrooms", "hallways", "kitchens", "nurseries")},
    {"category": "furniture", "query": "blackout curtains",
     "breadcrumb": ("Home & Kitchen", "Home Decor Products", "Window Treatments",
                    "Curtains & Drapes", "Panels"),
     "nouns": ("Blackout Curtains", "Curtain Panels", "Thermal Curtains", "Window Drapes"),
     "attributes": ("room darkening", "thermal insulated", "noise reducing",
                    "machine washable", "grommet top", "rod pocket", "energy saving",
                    "living room", "bedroom", "easy to install", "light blocking",
                    "wrinkle free", "privacy", "sliding glass door"),
     "options": {"color": ("black", "gray", "navy", "beige", "white", "sage green", "burgundy",
                           "teal"),
                 "size": ("42 x 63", "42 x 84", "52 x 63", "52 x 84", "52 x 95", "52 x 108")},
     "price": (15.0, 90.0),
     "features": _FURNITURE_FEATURES + (
         "{attr} panels that block up to 99 percent of sunlight",
         "hang your {noun} on any standard rod with the silver grommets",
         "triple weave fabric keeps rooms cooler in summer and warmer in winter"),
     "uses": ("bedrooms", "living rooms", "nurseries", "home theaters")},
)

PRODUCT_TYPES: tuple[dict[str, Any], ...] = (
    _BEAUTY_TYPES + _ELECTRONICS_TYPES + _FASHION_TYPES + _FOOD_TYPES + _FURNITURE_TYPES
)

# ---------------------------------------------------------------------------------
# Brands: invented names, unique across categories.
# ---------------------------------------------------------------------------------

BRANDS: dict[str, tuple[str, ...]] = {
    "beauty": (
        "Velloria", "Solvane", "Petalune", "Dewcrest", "Auralis", "Kindra Bloom", "Silkhaven",
        "Rosmera", "Lunessa", "Calyndra", "Opaline Row", "Marisol Glow", "Bellarosa Lab",
        "Nuvelle", "Serapha", "Glowvine", "Amberlei", "Quillara", "Hushbloom", "Taveline",
        "Corallis", "Vireo Skin", "Fawnmere", "Lilacine", "Zephyra", "Brisa Botanica",
        "Olvera Beauty", "Meadowmist", "Sunnabel", "Cressida Care", "Ivorene", "Pearlwick",
        "Saffira", "Nectaria", "Thistledew", "Elowen Lane", "Mossveil", "Hollis & Fern",
        "Camellix", "Orvessa", "Dahlune", "Vantelle",
    ),
    "electronics": (
        "Voltaris", "Zentrik", "Quorvex", "Auralink", "Nexadyne", "Bravox", "Pulsewave",
        "Kyntra", "Sonavique", "Trekon", "Lumetric", "Ohmbridge", "Veltrix", "Circuvia",
        "Astrobeam", "Gridwell", "Novaquill", "Zyntrel", "Hexalon", "Corevant", "Arcwave",
        "Vividon", "Tronlight", "Qubeo", "Ferrolux", "Signavo", "Boltera", "Linkora",
        "Mavrin", "Dynaspark", "Echoreach", "Orbitune", "Photrix", "Skyvolt", "Telvani",
        "Wavecrest Audio", "Pixelforge", "Stratobyte", "Kinetrel", "Ionspire", "Jolterra",
        "Cobaltix",
    ),
    "fashion": (
        "Marlowe Thread", "Ashgrove", "Tessaly", "Wren & Willow", "Corvina", "Lindenhall",
        "Saltmarsh", "Fable Stitch", "Juniper Row", "Vellichor", "Harbor Lane",
        "Brindle & Pine", "Sorrelle", "Kestrel Kind", "Caspian Loom", "Maiden Oak", "Nordvik",
        "Ravella", "Thornbury", "Solstice Knit", "Delphine Co", "Ollivane", "Briarwood",
        "Cinderly", "Foxmoor", "Amberline", "Palomi", "Rivenna", "Sable Coast", "Windmere",
        "Indigo Fold", "Halcyra", "Merrow & Sage", "Tidewell", "Quinlan Knit", "Loomista",
        "Ardenne", "Selvedge Hill", "Calloway Rue", "Gildmoor", "Perrin Lane", "Veradale",
    ),
    "food": (
        "Harvest Hollow", "Sunny Acre", "Maple Crest", "Grainwell", "Orchard Lane",
        "Pantry Peak", "Honeybrook", "Fieldstead", "Nutmeadow", "Crumb & Co", "Savorly",
        "Wildthyme", "Copperbarrow", "Greenfold", "Olivara", "Brook & Barley", "Tastewell",
        "Morningrove", "Cinderbrook Farms", "Saltwick", "Bramblefield", "Goldgrain",
        "Spiceharbor", "Kernelworth", "Fig & Fennel", "Peachtree Pantry", "Riverbend Foods",
        "Nibblewood", "Cocoa Cove", "Zestfield", "Larkspur Kitchen", "Wholesome Hearth",
        "Redmesa Foods", "Tumbleweed Snacks", "Ambergrain", "Plumhill", "Sprout & Sparrow",
        "Lemonbrook", "Hearthloaf", "Seedling Sisters", "Gingerwood", "Berrymoor",
    ),
    "furniture": (
        "Oak & Ember", "Hearthline", "Timbervale", "Cedarwell", "Loftcraft", "Nestwood",
        "Elmhurst Home", "Birchmoor", "Arborly", "Woodhaven Living", "Stonebridge Home",
        "Walnut Row", "Crestmoor", "Driftwood Lane", "Homestead Forge", "Pinecroft",
        "Kindlewood", "Ashbury Home", "Maplefold", "Linden & Lark", "Ironbark Studio",
        "Hollowcrest", "Teakstone", "Larchfield", "Alderwick", "Quarry & Co", "Willowmere",
        "Fernhollow", "Rowanwood", "Grovecraft", "Sprucedale", "Norrbo", "Copperleaf Home",
        "Baywood Studio", "Cobblestone Living", "Havenmore", "Riverstone Casa", "Beechworth",
        "Thistlehome", "Mosswick", "Oakenfold", "Umberhaus",
    ),
}

# ---------------------------------------------------------------------------------
# Shopper instructions. "{options}" is "" or starts with a space; see the docstring.
# Openings follow how often people used them in WebShop's human instructions: "i am
# looking for" and "im looking for" dominate, then "i would like", "i need", "i want".
# ---------------------------------------------------------------------------------

INSTRUCTION_TEMPLATES: tuple[str, ...] = (
    "i am looking for {attrs} {noun}{options}",
    "i am looking for {attrs} {noun}{options}, please",
    "im looking for {attrs} {noun}{options}",
    "i'm looking for {attrs} {noun}{options}",
    "i would like {attrs} {noun}{options}",
    "i would like to buy {attrs} {noun}{options}",
    "i need {attrs} {noun}{options}",
    "i need to buy {attrs} {noun}{options}",
    "i want {attrs} {noun}{options}",
    "i want to buy {attrs} {noun}{options}",
    "i want to find {attrs} {noun}{options}",
    "i want to get {attrs} {noun}{options}",
    "i am interested in {attrs} {noun}{options}",
    "im interested in {attrs} {noun}{options}",
    "id like to buy {attrs} {noun}{options}",
    "id like to get {attrs} {noun}{options}",
    "i am searching for {attrs} {noun}{options}",
    "im searching for {attrs} {noun}{options}",
    "i am in need of {attrs} {noun}{options}",
    "find me {attrs} {noun}{options}",
    "find me {attrs} {noun}{options} please",
    "get me {attrs} {noun}{options}",
    "buy me {attrs} {noun}{options}",
    "can you find me {attrs} {noun}{options}",
    "can i get {attrs} {noun}{options}",
    "help me find {attrs} {noun}{options}",
    "please help me find {attrs} {noun}{options}",
    "show me {attrs} {noun}{options}",
    "look for {attrs} {noun}{options}",
    "looking for {attrs} {noun}{options}",
    "im trying to find {attrs} {noun}{options}",
    "i am shopping for {attrs} {noun}{options}",
    "{attrs} {noun}{options}",
    "i am looking for {noun}{options} that is {attrs}",
    "i need {noun}{options}. it should be {attrs}",
    "i want {noun}{options} and it must be {attrs}",
    "i would like {noun}{options}, something {attrs}",
    "im looking for {noun}{options}, it needs to be {attrs}",
    # informal spellings and slips, as real shoppers type them
    "im locking for {attrs} {noun}{options}",
    "i looking a {attrs} {noun}{options}",
    "i am lookng for {attrs} {noun}{options}",
    "i wnat {attrs} {noun}{options}",
    "pls find {attrs} {noun}{options}",
)

# Phrases for one chosen option value; the generator joins several with ", " or " and ".
OPTION_PHRASES: dict[str, tuple[str, ...]] = {
    "color": ("in {value}", "in {value} color", "in the color {value}", "with color {value}"),
    "size": ("in size {value}", "size {value}", "in {value} size", "in a size {value}"),
    "flavor name": ("in {value} flavor", "{value} flavored", "with {value} flavor",
                    "in the {value} flavor"),
    "item package quantity": ("{value}", "in a {value}"),
    "style": ("in {value} style", "style {value}", "in the {value} style"),
    "scent": ("in {value} scent", "with a {value} scent", "{value} scented"),
    "pattern name": ("in {value} pattern", "with a {value} pattern", "pattern {value}"),
    "material": ("made of {value}", "in {value} material", "with {value} material"),
    "capacity": ("with {value}", "with {value} capacity", "in {value}"),
    "number of items": ("{value}", "that comes in {value}", "in a {value} pack"),
}

# ---------------------------------------------------------------------------------
# Reviews and descriptions, shared by all categories.
# ---------------------------------------------------------------------------------

REVIEW_TITLES: tuple[str, ...] = (
    "Exactly as described", "Great value", "Would buy again", "Five stars", "Love it",
    "Better than expected", "Good quality for the price", "Not bad at all", "Works great",
    "Highly recommend", "My new favorite", "Solid purchase", "Arrived quickly",
    "Perfect gift", "Does the job", "Pleasantly surprised", "Worth every penny",
    "Decent but not perfect", "Nice quality", "So happy with this", "Great for everyday use",
    "Just what I needed", "Exceeded my expectations", "Okay for the price",
    "Bought a second one", "Simple and effective", "Quality is top notch",
    "Pretty good overall", "Good but shipping was slow", "Would recommend to friends",
    "Three stars", "Not quite what I pictured", "Family loves it", "Repeat customer",
)

REVIEW_BODIES: tuple[str, ...] = (
    "This {noun} is exactly what I was looking for.",
    "I have been using this {noun} for a month and it still looks brand new.",
    "Good value for the money, I would buy it again.",
    "Arrived two days early and well packaged.",
    "The quality is better than I expected at this price.",
    "My daughter loves her new {noun}.",
    "Bought this as a gift and it was a hit.",
    "It does what it says, nothing more and nothing less.",
    "The picture online is accurate, no surprises.",
    "Took a star off because the packaging was a little damaged.",
    "I compared several options and this {noun} was the best of the bunch.",
    "Customer service answered my question within hours.",
    "Second time ordering, still happy.",
    "Not perfect, but for the price I cannot complain.",
    "I use my {noun} every day and have had zero issues.",
    "Looks even better in person.",
    "My husband was skeptical but now he uses it more than I do.",
    "Easy to set up, and the instructions were clear.",
    "Would recommend this {noun} to anyone on a budget.",
    "It took a little getting used to, but now I love it.",
    "The color was slightly different from the photos but still nice.",
    "Sturdy, well made and nicely finished.",
    "I ordered one for myself and one for my mom.",
    "Honestly one of the better purchases I have made this year.",
    "Works as advertised.",
    "This replaced an older {noun} that I had for years, and it is a clear upgrade.",
    "Shipping was slow, but the product itself is great.",
    "It is fine, though I expected a bit more for the price.",
    "My kids fight over who gets to use it.",
    "After three months of use it still holds up well.",
    "Simple, practical and exactly as pictured.",
    "I keep coming back to this {noun}; nothing else compares.",
    "Five stars for quality, four for the price.",
)

DESCRIPTION_TEMPLATES: tuple[str, ...] = (
    "The {brand} {noun} is made for {use}. Highlights include {attr} and {attr2}, and every "
    "unit is checked by hand before it ships. Questions? Our team answers within one "
    "business day.",
    "Meet the {noun} from {brand}, designed for {use}. Key qualities: {attr}, {attr2}. It is "
    "the kind of everyday upgrade you stop noticing because it simply works.",
    "At {brand} we believe good things should be simple. This {noun} brings together {attr} "
    "and {attr2} in one dependable product for {use}.",
    "Looking for a {noun} for {use}? {brand} designed this one around two things shoppers "
    "asked for most: {attr} and {attr2}. Order with confidence; returns are free for 30 "
    "days.",
    "{brand} started with one question: why can't a {noun} offer both {attr} and {attr2}? "
    "This is our answer, made for {use} and backed by our satisfaction promise.",
    "Whether it is for {use} or a gift for someone you love, this {noun} from {brand} "
    "delivers. Customers especially mention the {attr} design and the {attr2} details.",
    "Product description: {brand} {noun}. Features: {attr}; {attr2}. Recommended for {use}. "
    "Colors may vary slightly due to lighting and screen settings.",
    "Every {brand} {noun} passes a quality check before it leaves our warehouse. With {attr} "
    "and {attr2} built in, it is a smart pick for {use}.",
    "Made in small batches by the {brand} team, this {noun} balances {attr} with {attr2}. "
    "Ideal for {use}, and easy to love from day one.",
    "Thank you for choosing {brand}. Your new {noun} is ready for {use}, with {attr} and "
    "{attr2} as standard. If anything is not right, reach out and we will fix it.",
)

# ---------------------------------------------------------------------------------
# Self-check: `python -c "import envs.vocab as v; v.validate()"`.
# ---------------------------------------------------------------------------------

_TYPE_KEYS = frozenset({"category", "query", "breadcrumb", "nouns", "attributes", "options",
                        "price", "features", "uses"})
_ATTRIBUTE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789 ")
_NOUN_SMALL_WORDS = frozenset({"and", "of", "with", "in", "for", "de"})


def _placeholders(text: str) -> list[str]:
    """Names inside "{...}" in `text`, in order, repeats kept."""
    names: list[str] = []
    start = text.find("{")
    while start != -1:
        end = text.find("}", start)
        if end == -1:
            raise ValueError(f"unclosed '{{' in {text!r}")
        names.append(text[start + 1:end])
        start = text.find("{", end)
    return names


def _check_count(where: str, items: Any, low: int, high: int) -> None:
    if not low <= len(items) <= high:
        raise ValueError(f"{where}: has {len(items)} items, expected {low}-{high}")


def _check_attributes(where: str, attributes: tuple[str, ...]) -> None:
    _check_count(f"{where} 'attributes'", attributes, 12, 20)
    for attr in attributes:
        words = attr.split(" ")
        if not set(attr) <= _ATTRIBUTE_CHARS or not 1 <= len(words) <= 3 or "" in words:
            raise ValueError(f"{where} 'attributes': bad phrase {attr!r} (lower-case words, "
                             "letters and digits only, 1-3 words)")
    for i, attr in enumerate(attributes):
        for j, other in enumerate(attributes):
            if i != j and attr in other:
                raise ValueError(f"{where} 'attributes': {attr!r} is duplicated in or a "
                                 f"substring of {other!r}")


def _check_options(where: str, options: dict[str, tuple[str, ...]]) -> None:
    if not isinstance(options, dict) or len(options) > 3:
        raise ValueError(f"{where} 'options': expected a dict of at most 3 groups")
    for group, values in options.items():
        if group not in OPTION_PHRASES:
            raise ValueError(f"{where} 'options': group {group!r} has no OPTION_PHRASES entry")
        _check_count(f"{where} 'options' {group!r}", values, 6, 14)
        if len(set(values)) != len(values):
            raise ValueError(f"{where} 'options' {group!r}: repeated values")
        for value in values:
            if value != value.lower() or value != value.strip() or "/" in value or not value:
                raise ValueError(f"{where} 'options' {group!r}: bad value {value!r}")


def _check_type(ptype: dict[str, Any]) -> None:
    where = f"product type {ptype.get('query')!r}"
    if set(ptype) != _TYPE_KEYS:
        raise ValueError(f"{where}: keys {sorted(ptype)} != {sorted(_TYPE_KEYS)}")
    category = ptype["category"]
    if category not in CATEGORIES:
        raise ValueError(f"{where} 'category': {category!r} not in CATEGORIES")
    query = ptype["query"]
    if not query or query != query.lower() or query != query.strip():
        raise ValueError(f"{where} 'query': must be non-empty lower-case")
    crumbs = ptype["breadcrumb"]
    _check_count(f"{where} 'breadcrumb'", crumbs, 3, 5)
    if crumbs[0] != DEPARTMENTS[category]:
        raise ValueError(f"{where} 'breadcrumb': starts {crumbs[0]!r}, expected "
                         f"{DEPARTMENTS[category]!r}")
    _check_count(f"{where} 'nouns'", ptype["nouns"], 2, 4)
    for noun in ptype["nouns"]:
        for word in noun.split():
            if not (word[0].isupper() or word[0].isdigit() or word in _NOUN_SMALL_WORDS):
                raise ValueError(f"{where} 'nouns': {noun!r} is not Title Case")
    _check_attributes(where, ptype["attributes"])
    _check_options(where, ptype["options"])
    low, high = ptype["price"]
    if not (isinstance(low, float) and isinstance(high, float) and 3.0 <= low < high <= 600.0):
        raise ValueError(f"{where} 'price': {ptype['price']!r} is not 3 <= low < high <= 600")
    _check_count(f"{where} 'features'", ptype["features"], 5, 8)
    for feature in ptype["features"]:
        if not set(_placeholders(feature)) <= {"attr", "noun"}:
            raise ValueError(f"{where} 'features': {feature!r} uses unknown placeholders")
    _check_count(f"{where} 'uses'", ptype["uses"], 2, 5)
    for use in ptype["uses"]:
        if use != use.lower() or not use:
            raise ValueError(f"{where} 'uses': {use!r} must be non-empty lower-case")


def _check_product_types() -> None:
    queries: set[str] = set()
    for ptype in PRODUCT_TYPES:
        _check_type(ptype)
        if ptype["query"] in queries:
            raise ValueError(f"product type {ptype['query']!r} 'query': not unique")
        queries.add(ptype["query"])
    for category in CATEGORIES:
        types = [t for t in PRODUCT_TYPES if t["category"] == category]
        if len(types) < 16:
            raise ValueError(f"category {category!r}: {len(types)} product types, need 16+")
        prefixes = [t["breadcrumb"][:2] for t in types]
        if len(set(prefixes)) == len(prefixes):
            raise ValueError(f"category {category!r}: no two types share 2 breadcrumb levels")
    num_bare = sum(1 for t in PRODUCT_TYPES if not t["options"])
    if not 0.05 <= num_bare / len(PRODUCT_TYPES) <= 0.2:
        raise ValueError(f"PRODUCT_TYPES: {num_bare} types without options, want about 10%")


def _check_brands() -> None:
    if set(BRANDS) != set(CATEGORIES):
        raise ValueError(f"BRANDS: keys {sorted(BRANDS)} != CATEGORIES")
    seen: set[str] = set()
    for category, names in BRANDS.items():
        if len(names) < 40:
            raise ValueError(f"BRANDS[{category!r}]: {len(names)} names, need 40+")
        for name in names:
            words = [w for w in name.split() if w != "&"]
            if not 1 <= len(words) <= 2 or not all(w[0].isupper() for w in words):
                raise ValueError(f"BRANDS[{category!r}]: {name!r} is not 1-2 Title Case words")
            if name in seen:
                raise ValueError(f"BRANDS[{category!r}]: {name!r} appears twice")
            seen.add(name)


def _check_templates() -> None:
    _check_count("INSTRUCTION_TEMPLATES", INSTRUCTION_TEMPLATES, 25, 1000)
    for text in INSTRUCTION_TEMPLATES:
        names = _placeholders(text)
        if sorted(names) != ["attrs", "noun", "options"] or text != text.lower():
            raise ValueError(f"INSTRUCTION_TEMPLATES: {text!r} needs lower case and each of "
                             "{noun}, {attrs}, {options} exactly once")
        if text.index("{options}") > 0 and text[text.index("{options}") - 1].isspace():
            raise ValueError(f"INSTRUCTION_TEMPLATES: {text!r} has a space before {{options}}")
    for group, phrases in OPTION_PHRASES.items():
        _check_count(f"OPTION_PHRASES[{group!r}]", phrases, 2, 4)
        for phrase in phrases:
            if _placeholders(phrase) != ["value"]:
                raise ValueError(f"OPTION_PHRASES[{group!r}]: {phrase!r} needs one {{value}}")
    for name, texts, allowed in (("REVIEW_TITLES", REVIEW_TITLES, set()),
                                 ("REVIEW_BODIES", REVIEW_BODIES, {"noun"})):
        _check_count(name, texts, 30, 1000)
        for text in texts:
            if not set(_placeholders(text)) <= allowed:
                raise ValueError(f"{name}: {text!r} uses unknown placeholders")
    _check_count("DESCRIPTION_TEMPLATES", DESCRIPTION_TEMPLATES, 8, 1000)
    wanted = ["attr", "attr2", "brand", "noun", "use"]
    for text in DESCRIPTION_TEMPLATES:
        if sorted(_placeholders(text)) != wanted:
            raise ValueError(f"DESCRIPTION_TEMPLATES: {text!r} needs each of {wanted} once")


def validate() -> None:
    """Raise ValueError naming the first broken rule (type and key) in this module."""
    if CATEGORIES != ("beauty", "electronics", "fashion", "food", "furniture"):
        raise ValueError(f"CATEGORIES: unexpected {CATEGORIES!r}")
    _check_product_types()
    _check_brands()
    _check_templates()
