"""Seeded rows unrelated to math for the demo data: everyday requests and chit-chat with a written answer.

Each template fills slots from small word banks with a `random.Random`, so the rows vary while staying plain,
non-mathematical text. A `Chat` keeps the instruction and its optional input apart (Alpaca / Self-Instruct layouts
have both); other layouts join them with a blank line.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Chat", "make_chat", "make_chat_zh"]


@dataclass(frozen=True)
class Chat:
    instruction: str
    input: str
    output: str

    @property
    def question(self) -> str:
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction


TIPS = {
    "sleeping better": ("Go to bed and get up at the same time every day.", ("Keep screens out of the bedroom for "
                        "the last hour before sleep."), "Avoid coffee in the afternoon.", "Keep the room cool and dark."),
    "learning a new language": ("Practise a little every day instead of a lot once a week.", ("Listen to podcasts "
                                "or songs in the language."), "Speak with native speakers as early as you can.",
                                "Keep a notebook of new words and review it."),
    "keeping a tidy desk": ("Clear the desk at the end of each day.", "Give every object a fixed place.",
                            "Keep only what you use daily within reach.", "Recycle old papers every Friday."),
    "staying focused while studying": ("Put your phone in another room.", ("Write down one clear goal for each "
                                       "session."), "Take a short break after each block of work.",
                                       "Study in the same quiet place."),
    "preparing for a job interview": ("Read about the company and its products.", ("Prepare short stories about "
                                      "your past work."), "Practise answers out loud with a friend.",
                                      "Prepare two questions to ask at the end."),
    "making friends in a new city": ("Join a club or a sports team.", "Say yes to invitations, even small ones.",
                                     "Volunteer for a local cause.", "Talk to your neighbours."),
}
PLACES = {
    "a rainforest": "A rainforest is a dense, warm and wet forest where tall trees form a closed canopy. It is home "
                    "to more kinds of plants and animals than almost any other place on land.",
    "a desert oasis": "An oasis is a green spot in the desert where underground water reaches the surface. Palm "
                      "trees grow around the water and travellers have rested there for centuries.",
    "a busy harbour": "A harbour is full of ships, cranes and the smell of salt water. Fishing boats come and go "
                      "while gulls circle above the piers.",
    "a mountain village": "The village sits on a steep slope with stone houses and narrow lanes. In winter the "
                          "roofs are covered with snow and smoke rises from every chimney.",
    "a night market": "A night market fills a street with lamps, food stalls and music after sunset. People walk "
                      "slowly between the stands, tasting snacks and bargaining for small gifts.",
}
CONCEPTS = {
    "photosynthesis": "Photosynthesis is how plants make their own food: they use sunlight to turn water and carbon "
                      "dioxide from the air into sugar, and they release oxygen.",
    "gravity": "Gravity is the pull that objects with mass have on each other. It keeps our feet on the ground and "
               "the Moon moving around the Earth.",
    "democracy": "Democracy is a way of governing in which citizens choose their leaders in free elections and can "
                 "replace them if they are unhappy.",
    "an ecosystem": "An ecosystem is a community of living things, like plants, animals and fungi, together with "
                    "the soil, water and air they depend on.",
    "a vaccine": "A vaccine trains the immune system to recognise a germ without making you ill, so that the body "
                 "can fight the real germ quickly later.",
    "erosion": "Erosion is the slow wearing away of rock and soil by wind, water or ice, which carries the pieces "
               "to other places.",
    "a metaphor": "A metaphor describes something by calling it something else, like saying time is a thief, to "
                  "show a likeness without using the word like.",
}
FRENCH = {
    "Where is the train station?": "Où est la gare ?",
    "I would like a cup of tea, please.": "Je voudrais une tasse de thé, s'il vous plaît.",
    "The museum is closed on Mondays.": "Le musée est fermé le lundi.",
    "We are going to the beach tomorrow.": "Nous allons à la plage demain.",
    "My sister plays the piano.": "Ma sœur joue du piano.",
    "Thank you for your help.": "Merci pour votre aide.",
}
INFORMAL = {
    "Hey, send me the report asap.": "Could you please send me the report as soon as possible?",
    "Can't make it to the meeting, sorry.": "I regret that I will not be able to attend the meeting.",
    "Thanks a ton for the help!": "Thank you very much for your assistance.",
    "The new app is kinda confusing.": "The new application is somewhat difficult to understand.",
    "We gotta finish this by Friday.": "We need to complete this work by Friday.",
}
FRUIT_OR_VEG = {"carrot": "vegetable", "mango": "fruit", "spinach": "vegetable", "pear": "fruit",
                "broccoli": "vegetable", "cherry": "fruit", "onion": "vegetable", "kiwi": "fruit"}
GENRES = {
    "comedy": ("a light comedy about a family road trip", "it is funny without being silly and works for all ages"),
    "mystery": ("a detective story set in a snowed-in hotel", "the clues are fair and the ending surprises"),
    "science fiction": ("a film about the first crew to live on Mars", "it mixes great visuals with a human story"),
    "documentary": ("a nature documentary about ocean life", "the underwater footage is beautiful and calming"),
    "animated": ("an animated adventure about a lost robot", "both children and adults tend to love it"),
}
SHOPS = ("bakery", "bookshop", "bike repair shop", "coffee bar", "flower shop", "pet grooming salon")
SHOP_NAMES = ("The Golden Crust", "Page and Pine", "Spoke and Chain", "Bean There", "Petal Lane", "Fluff and Fold",
              "Corner Nook", "Morning Light")
CITIES = ("Lisbon", "Kyoto", "Edinburgh", "Oaxaca", "Vienna", "Cape Town", "Montreal", "Hanoi")
PLANTS = {
    "cactus": "Give it a sunny window, water it only when the soil is completely dry, and use a pot with drainage.",
    "fern": "Keep it in indirect light, keep the soil slightly moist and mist the leaves in dry weather.",
    "orchid": "Place it in bright, indirect light, water it about once a week and let the roots dry in between.",
    "basil plant": "Give it plenty of sun, water it when the top of the soil is dry and pinch off the flower buds.",
    "snake plant": "It tolerates low light; water it every two or three weeks and do not let it stand in water.",
}
TOPICS = ("autumn leaves", "the sea at night", "a quiet library", "spring rain", "an old bicycle", "city lights")
HAIKU_LINES = (
    ("Soft light on the path", "A slow wind moves through the trees", "Everything is still"),
    ("Waves fold into foam", "The moon listens to the shore", "Boats sleep in the bay"),
    ("Pages turn softly", "Dust floats in a beam of sun", "Whispers fill the room"),
    ("Drops on the window", "Green buds open one by one", "The garden wakes up"),
)
NAMES = ("Anna", "Marco", "Fatima", "Jin", "Olivia", "Tariq", "Elena", "Kofi")
GIFTS = ("lovely scarf", "book you sent", "flowers", "dinner invitation", "help with the move", "birthday card")
PACK = {
    "beach": ("swimsuit", "sunscreen", "a hat", "sandals", "a light towel"),
    "hiking": ("sturdy boots", "a rain jacket", "a water bottle", "a map", "warm layers"),
    "city": ("comfortable shoes", "a small backpack", "an umbrella", "a phone charger", "a guidebook"),
    "camping": ("a tent", "a sleeping bag", "a torch", "insect repellent", "a cooking stove"),
}
PRODUCTS = {
    "reusable coffee cup": "keeps drinks hot for hours, fits under most coffee machines and folds flat in a bag",
    "desk lamp": "gives warm, even light, bends in any direction and switches off by itself after two hours",
    "rain jacket": "keeps you dry in heavy showers, breathes on warm days and packs into its own pocket",
    "wooden puzzle": "is made from sustainable birch, has smooth edges and keeps curious minds busy",
}


def _tips(r: random.Random) -> Chat:
    topic = r.choice(sorted(TIPS))
    tips = r.sample(TIPS[topic], 3)
    return Chat(f"Give three tips for {topic}.", "", "\n".join(f"{i}. {t}" for i, t in enumerate(tips, 1)))


def _describe(r: random.Random) -> Chat:
    place = r.choice(sorted(PLACES))
    return Chat(r.choice(("Describe {} in two sentences.", "Write a short description of {}.")).format(place), "",
                PLACES[place])


def _explain(r: random.Random) -> Chat:
    concept = r.choice(sorted(CONCEPTS))
    return Chat(r.choice(("Explain {} in simple words.", "What is {}?", "Can you tell me what {} means?"))
                .format(concept), "", CONCEPTS[concept])


def _translate(r: random.Random) -> Chat:
    phrase = r.choice(sorted(FRENCH))
    return Chat("Translate the sentence into French.", phrase, FRENCH[phrase])


def _formal(r: random.Random) -> Chat:
    phrase = r.choice(sorted(INFORMAL))
    return Chat("Rewrite the sentence in a more formal tone.", phrase, INFORMAL[phrase])


def _classify(r: random.Random) -> Chat:
    food = r.choice(sorted(FRUIT_OR_VEG))
    kind = FRUIT_OR_VEG[food]
    article = "An" if food[0] in "aeiou" else "A"
    return Chat("Classify the food as a fruit or a vegetable.", food, f"{article} {food} is a {kind}.")


def _movie(r: random.Random) -> Chat:
    genre = r.choice(sorted(GENRES))
    film, why = GENRES[genre]
    return Chat(f"Hi! Can you recommend a {genre} movie for the weekend?", "",
                f"Sure! You could try {film}: {why}. Do you want a few more ideas in the same style?")


def _shop_name(r: random.Random) -> Chat:
    shop, city, name = r.choice(SHOPS), r.choice(CITIES), r.choice(SHOP_NAMES)
    return Chat(f"Suggest a name for a small {shop} in {city}.", "",
                f"How about \"{name}\"? It is short, easy to remember and gives a friendly feeling.")


def _care(r: random.Random) -> Chat:
    plant = r.choice(sorted(PLANTS))
    return Chat(f"How do I take care of a {plant}?", "", PLANTS[plant])


def _haiku(r: random.Random) -> Chat:
    return Chat(f"Write a haiku about {r.choice(TOPICS)}.", "", "\n".join(r.choice(HAIKU_LINES)))


def _thanks(r: random.Random) -> Chat:
    name, gift = r.choice(NAMES), r.choice(GIFTS)
    return Chat(f"Write a short thank-you note to {name} for the {gift}.", "",
                f"Dear {name},\nThank you so much for the {gift}. It was a very kind thought and it made my week. "
                "I hope we can meet again soon.\nWarm wishes")


def _pack(r: random.Random) -> Chat:
    trip = r.choice(sorted(PACK))
    items = r.sample(PACK[trip], 4)
    return Chat(f"What should I pack for a {trip} trip?", "",
                f"For a {trip} trip, bring {', '.join(items[:3])} and {items[3]}. Check the weather before you go.")


def _product(r: random.Random) -> Chat:
    product = r.choice(sorted(PRODUCTS))
    return Chat(f"Write a one-sentence product description for a {product}.", "",
                f"This {product} {PRODUCTS[product]}.")


def _trip_plan(r: random.Random) -> Chat:
    city = r.choice(CITIES)
    return Chat(f"Plan a relaxed day in {city}.", "",
                f"Start with breakfast at a local cafe and a walk through the old town of {city}. After lunch, "
                "visit a museum or a park, then end the day with dinner somewhere with a view.")


TEMPLATES: tuple[Callable[[random.Random], Chat], ...] = (
    _tips, _describe, _explain, _translate, _formal, _classify, _movie, _shop_name, _care, _haiku, _thanks, _pack,
    _product, _trip_plan,
)


def make_chat(r: random.Random) -> Chat:
    """One English everyday request with its answer, from a random template."""
    return r.choice(TEMPLATES)(r)


# ---- Chinese (TAL-SCQ5K-CN) -----------------------------------------------------------------------------------

TIPS_ZH = {
    "提高睡眠质量": ("每天固定时间睡觉和起床。", "睡前一小时不看手机。", "下午以后不喝咖啡。", "保持卧室安静、凉爽。"),
    "学好一门外语": ("每天坚持练习一点。", "多听外语歌曲和广播。", "大胆和别人开口交流。", "准备一个生词本经常复习。"),
    "保持书桌整洁": ("每天结束时收拾桌面。", "每样东西都有固定的位置。", "常用的东西放在手边。", "定期清理旧纸张。"),
}
CITIES_ZH = {
    "杭州": "杭州是一座风景优美的城市，西湖闻名全国。这里的龙井茶也很有名。",
    "西安": "西安是一座历史悠久的古城，有著名的兵马俑。这里的面食种类丰富，味道很好。",
    "成都": "成都生活节奏悠闲，人们喜欢在茶馆里聊天。这里还是大熊猫的故乡。",
    "青岛": "青岛是一座海滨城市，夏天凉爽宜人。红瓦绿树和碧海蓝天是它的特色。",
}
POLITE_ZH = {
    "把文件给我。": "麻烦您把文件给我，谢谢。",
    "快点开门。": "请您帮忙开一下门，好吗？",
    "明天别迟到。": "希望大家明天能准时到达。",
}


def _tips_zh(r: random.Random) -> Chat:
    topic = r.choice(sorted(TIPS_ZH))
    tips = r.sample(TIPS_ZH[topic], 3)
    return Chat(f"请给出三个{topic}的建议。", "", "\n".join(f"{i}. {t}" for i, t in enumerate(tips, 1)))


def _city_zh(r: random.Random) -> Chat:
    city = r.choice(sorted(CITIES_ZH))
    return Chat(f"请用两句话介绍一下{city}。", "", CITIES_ZH[city])


def _polite_zh(r: random.Random) -> Chat:
    phrase = r.choice(sorted(POLITE_ZH))
    return Chat("把下面的句子改写得更礼貌一些。", phrase, POLITE_ZH[phrase])


def make_chat_zh(r: random.Random) -> Chat:
    """One Chinese everyday request with its answer."""
    return r.choice((_tips_zh, _city_zh, _polite_zh))(r)
