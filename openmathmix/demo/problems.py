"""Seeded math word problems for the demo data: a question, its worked steps, the final value and a Python program.

Every template below draws its names, objects and numbers from a `random.Random`, so one seed gives one problem and
nothing is copied from a real dataset. The numbers are chosen so that every intermediate result is a whole number.
A `Problem` is rendered differently per row kind and per source layout (see `layouts.py`); the steps keep their
arithmetic separate (`Step.expr`, `Step.value`) so a GSM8K-style `<<expr=value>>` annotation can be added.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SHORT_TEMPLATES", "TEMPLATES", "TEMPLATES_ZH", "Problem", "Step", "make_problem", "make_problem_zh"]


@dataclass(frozen=True)
class Step:
    """One line of a worked solution: ``{text} {expr} = {value} {unit}.``"""

    text: str
    expr: str
    value: int
    unit: str = ""

    def render(self, annotate: bool = False) -> str:
        """The step as a sentence; ``annotate`` adds GSM8K's calculator mark ``<<expr=value>>``."""
        value = f"<<{self.expr.replace(' ', '')}={self.value}>>{self.value}" if annotate else str(self.value)
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.text} {self.expr} = {value}{unit}."


@dataclass(frozen=True)
class Problem:
    question: str
    steps: tuple[Step, ...]
    final: int
    code: str  # a Python program that prints the final value

    def solution(self, annotate: bool = False) -> str:
        return "\n".join(step.render(annotate) for step in self.steps)


NAMES = ("Maria", "Leo", "Aisha", "Tom", "Priya", "Kenji", "Sofia", "Omar", "Lena", "Diego", "Nora", "Sam", "Yuki",
         "Ben", "Chloe", "Ravi", "Ines", "Mateo", "Hana", "Felix", "Amara", "Jonas", "Mei", "Lucas")
GOODS = ("notebooks", "pens", "mugs", "candles", "posters", "puzzles", "scarves", "plant pots", "phone cases",
         "sketchbooks", "water bottles", "board games")
VEHICLES = (("train", 60, 120), ("bus", 40, 80), ("truck", 50, 90), ("ferry", 20, 40), ("car", 45, 100))
CROPS = ("apples", "strawberries", "tomatoes", "peppers", "plums", "eggs", "shells", "pine cones")
INGREDIENTS = ("flour", "rice", "sugar", "butter", "cheese", "oats", "lentils", "chocolate")
PARTS = ("bolts", "bottles", "toy cars", "buttons", "bricks", "light bulbs", "keychains")
EVENTS = ("school play", "concert", "football match", "magic show", "science fair", "puppet show")
PASTRIES = ("muffins", "croissants", "cookies", "bagels", "cupcakes", "scones")
CONTESTS = ("basketball games", "spelling quizzes", "bowling rounds", "chess puzzles", "archery rounds")
PURCHASES = ("bicycle", "guitar", "pair of skates", "tablet", "tent", "telescope")


def _shopping(r: random.Random) -> Problem:
    name, (g1, g2) = r.choice(NAMES), r.sample(GOODS, 2)
    a, p, b, q = r.randint(2, 9), r.randint(2, 12), r.randint(2, 6), r.randint(3, 15)
    t1, t2 = a * p, b * q
    total = t1 + t2
    bill = next(v for v in (20, 50, 100, 200) if v > total)
    return Problem(
        f"{name} buys {a} {g1} at ${p} each and {b} {g2} at ${q} each, and pays with a ${bill} bill. "
        f"How much change does {name} get?",
        (Step(f"The {g1} cost", f"{a} * {p}", t1, "dollars"), Step(f"The {g2} cost", f"{b} * {q}", t2, "dollars"),
         Step("Together that is", f"{t1} + {t2}", total, "dollars"),
         Step("The change is", f"{bill} - {total}", bill - total, "dollars")),
        bill - total,
        f"first = {a} * {p}\nsecond = {b} * {q}\ntotal = first + second\nprint({bill} - total)",
    )


def _trip(r: random.Random) -> Problem:
    vehicle, lo, hi = r.choice(VEHICLES)
    v1, v2 = r.randrange(lo, hi + 1, 5), r.randrange(lo, hi + 1, 5)
    t1, t2 = r.randint(2, 6), r.randint(2, 4)
    d1, d2 = v1 * t1, v2 * t2
    return Problem(
        f"A {vehicle} travels at {v1} km per hour for {t1} hours and then at {v2} km per hour for {t2} hours. "
        "How many kilometers does it travel in total?",
        (Step("In the first part it covers", f"{v1} * {t1}", d1, "km"),
         Step("In the second part it covers", f"{v2} * {t2}", d2, "km"),
         Step("The whole trip is", f"{d1} + {d2}", d1 + d2, "km")),
        d1 + d2,
        f"speeds = [{v1}, {v2}]\nhours = [{t1}, {t2}]\nprint(sum(s * h for s, h in zip(speeds, hours)))",
    )


def _sharing(r: random.Random) -> Problem:
    name, crop = r.choice(NAMES), r.choice(CROPS)
    n, d, f = r.randint(6, 15), r.randint(3, 7), r.randint(2, 5)
    picked = n * d
    kept = picked % f + f * r.randint(0 if picked % f else 1, 3)
    each = (picked - kept) // f
    return Problem(
        f"{name} picks {n} {crop} every day for {d} days, keeps {kept} of them and shares the rest equally among "
        f"{f} friends. How many {crop} does each friend get?",
        (Step(f"{name} picks", f"{n} * {d}", picked, crop), Step("After keeping some,", f"{picked} - {kept}",
                                                                 picked - kept, "are shared"),
         Step("Each friend gets", f"{picked - kept} / {f}", each, crop)),
        each,
        f"picked = {n} * {d}\nshared = picked - {kept}\nprint(shared // {f})",
    )


def _discount(r: random.Random) -> Problem:
    name, item = r.choice(NAMES), r.choice(PURCHASES)
    price, rate, coupon = r.randrange(40, 401, 20), r.choice((10, 20, 25, 50)), r.randint(2, 10)
    off = price * rate // 100
    return Problem(
        f"A {item} costs ${price}. The store takes {rate}% off, and then {name} uses a ${coupon} coupon. "
        f"How much does {name} pay?",
        (Step("The discount is", f"{price} * {rate} / 100", off, "dollars"),
         Step("After the discount the price is", f"{price} - {off}", price - off, "dollars"),
         Step(f"With the coupon {name} pays", f"{price - off} - {coupon}", price - off - coupon, "dollars")),
        price - off - coupon,
        f"price = {price}\nprice -= price * {rate} // 100\nprint(price - {coupon})",
    )


def _fence(r: random.Random) -> Problem:
    length, width, cost = r.randint(8, 40), r.randint(4, 25), r.randint(3, 12)
    half = length + width
    return Problem(
        f"A rectangular garden is {length} meters long and {width} meters wide. Fencing costs ${cost} per meter. "
        "How much does it cost to fence the whole garden?",
        (Step("Length plus width is", f"{length} + {width}", half, "meters"),
         Step("The perimeter is", f"2 * {half}", 2 * half, "meters"),
         Step("The fence costs", f"{2 * half} * {cost}", 2 * half * cost, "dollars")),
        2 * half * cost,
        f"length, width = {length}, {width}\nperimeter = 2 * (length + width)\nprint(perimeter * {cost})",
    )


def _average(r: random.Random) -> Problem:
    name, contest = r.choice(NAMES), r.choice(CONTESTS)
    scores = [r.randint(8, 40) for _ in range(4)]
    scores[3] += -sum(scores) % 4
    total = sum(scores)
    listed = ", ".join(map(str, scores[:3])) + f" and {scores[3]}"
    return Problem(
        f"{name} scored {listed} points in four {contest}. What was the average score?",
        (Step("The total is", " + ".join(map(str, scores)), total, "points"),
         Step("The average is", f"{total} / 4", total // 4, "points")),
        total // 4,
        f"scores = {scores}\nprint(sum(scores) // len(scores))",
    )


def _reading(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    per, evenings, done = r.randrange(10, 31, 5), r.randint(4, 20), r.randrange(20, 201, 10)
    pages = done + per * evenings
    return Problem(
        f"A book has {pages} pages. {name} has already read {done} pages and reads {per} pages every evening. "
        f"How many more evenings does {name} need to finish the book?",
        (Step("Pages left:", f"{pages} - {done}", pages - done), Step("Evenings needed:", f"{pages - done} / {per}",
                                                                      evenings)),
        evenings,
        f"left = {pages} - {done}\nprint(left // {per})",
    )


def _savings(r: random.Random) -> Problem:
    name, item = r.choice(NAMES), r.choice(PURCHASES)
    weekly, weeks = r.randint(5, 40), r.randint(4, 20)
    saved = weekly * weeks
    spent = r.randint(saved // 3, saved - 1)
    return Problem(
        f"{name} saves ${weekly} every week for {weeks} weeks and then spends ${spent} on a {item}. "
        "How much money is left?",
        (Step(f"{name} saves", f"{weekly} * {weeks}", saved, "dollars"),
         Step("What is left is", f"{saved} - {spent}", saved - spent, "dollars")),
        saved - spent,
        f"saved = {weekly} * {weeks}\nprint(saved - {spent})",
    )


def _equation(r: random.Random) -> Problem:
    a, x, b = r.randint(2, 9), r.randint(-9, 15), r.choice([v for v in range(-20, 31) if v])
    c = a * x + b
    sign = f"+ {b}" if b > 0 else f"- {-b}"
    move = (Step(f"Subtracting {b} from both sides gives {a}x =", f"{c} - {b}", a * x) if b > 0 else
            Step(f"Adding {-b} to both sides gives {a}x =", f"{c} + {-b}", a * x))
    return Problem(
        f"Solve for x: {a}x {sign} = {c}.",
        (move, Step(f"Dividing by {a} gives x =", f"{a * x} / {a}", x)),
        x,
        f"a, b, c = {a}, {b}, {c}\nprint((c - b) // a)",
    )


def _recipe(r: random.Random) -> Problem:
    food = r.choice(INGREDIENTS)
    per, cooks, guests = r.randrange(20, 81, 5), r.randint(2, 6), r.randint(3, 12)
    grams = per * cooks
    return Problem(
        f"A recipe for {cooks} people uses {grams} grams of {food}. How many grams of {food} are needed for "
        f"{guests} people?",
        (Step("One person needs", f"{grams} / {cooks}", per, "grams"),
         Step(f"{guests} people need", f"{per} * {guests}", per * guests, "grams")),
        per * guests,
        f"per_person = {grams} / {cooks}\nprint(int(per_person * {guests}))",
    )


def _ages(r: random.Random) -> Problem:
    older, younger = r.sample(NAMES, 2)
    k, age, years = r.randint(2, 5), r.randint(3, 14), r.randint(2, 15)
    return Problem(
        f"{older} is {k} times as old as {younger}. {younger} is {age} years old. How old will {older} be in "
        f"{years} years?",
        (Step(f"{older} is now", f"{k} * {age}", k * age, "years old"),
         Step(f"In {years} years {older} will be", f"{k * age} + {years}", k * age + years, "years old")),
        k * age + years,
        f"now = {k} * {age}\nprint(now + {years})",
    )


def _factory(r: random.Random) -> Problem:
    part = r.choice(PARTS)
    rate, hours, days = r.randrange(15, 121, 5), r.randint(4, 12), r.randint(3, 9)
    daily = rate * hours
    return Problem(
        f"A machine makes {rate} {part} per hour and runs {hours} hours a day. How many {part} does it make in "
        f"{days} days?",
        (Step("In one day it makes", f"{rate} * {hours}", daily, part),
         Step(f"In {days} days it makes", f"{daily} * {days}", daily * days, part)),
        daily * days,
        f"per_day = {rate} * {hours}\nprint(per_day * {days})",
    )


def _tickets(r: random.Random) -> Problem:
    event = r.choice(EVENTS)
    adults, adult_price, kids, kid_price = r.randint(20, 150), r.randint(8, 25), r.randint(10, 90), r.randint(3, 9)
    t1, t2 = adults * adult_price, kids * kid_price
    return Problem(
        f"A {event} sold {adults} adult tickets at ${adult_price} each and {kids} child tickets at ${kid_price} "
        "each. How much money did the tickets bring in?",
        (Step("Adult tickets bring in", f"{adults} * {adult_price}", t1, "dollars"),
         Step("Child tickets bring in", f"{kids} * {kid_price}", t2, "dollars"),
         Step("In total that is", f"{t1} + {t2}", t1 + t2, "dollars")),
        t1 + t2,
        f"adults = {adults} * {adult_price}\nchildren = {kids} * {kid_price}\nprint(adults + children)",
    )


def _sequence(r: random.Random) -> Problem:
    first, diff, n = r.randint(1, 20), r.randint(2, 9), r.choice((6, 8, 10, 12, 15, 20))
    last = first + (n - 1) * diff
    if n * (first + last) % 2:
        n += 1
        last += diff
    return Problem(
        f"The first term of an arithmetic sequence is {first} and the common difference is {diff}. "
        f"What is the sum of the first {n} terms?",
        (Step(f"The {n}th term is", f"{first} + {n - 1} * {diff}", last),
         Step("The sum is", f"{n} * ({first} + {last}) / 2", n * (first + last) // 2)),
        n * (first + last) // 2,
        f"terms = [{first} + {diff} * k for k in range({n})]\nprint(sum(terms))",
    )


def _percent(r: random.Random) -> Problem:
    students, share = r.randrange(20, 201, 20), r.choice((10, 15, 20, 25, 30, 35, 40, 45, 55, 60, 75))
    walk = students * share // 100
    return Problem(
        f"A school year group has {students} students and {share}% of them walk to school. How many students do "
        "not walk to school?",
        (Step("The walkers are", f"{students} * {share} / 100", walk, "students"),
         Step("The others are", f"{students} - {walk}", students - walk, "students")),
        students - walk,
        f"students = {students}\nwalkers = students * {share} // 100\nprint(students - walkers)",
    )


def _tank(r: random.Random) -> Problem:
    already, rate, minutes = r.randrange(10, 201, 10), r.randint(5, 30), r.randint(6, 40)
    size = already + rate * minutes
    return Problem(
        f"A tank holds {size} liters and already contains {already} liters of water. A pump adds {rate} liters "
        "per minute. How many minutes does it take to fill the tank?",
        (Step("The tank still needs", f"{size} - {already}", size - already, "liters"),
         Step("That takes", f"{size - already} / {rate}", minutes, "minutes")),
        minutes,
        f"missing = {size} - {already}\nprint(missing // {rate})",
    )


def _bakery(r: random.Random) -> Problem:
    pastry = r.choice(PASTRIES)
    trays, per = r.randint(3, 12), r.randint(6, 24)
    baked = trays * per
    morning = r.randint(baked // 5, baked // 2)
    afternoon = r.randint(1, baked - morning - 1)
    sold = morning + afternoon
    return Problem(
        f"A bakery bakes {trays} trays of {pastry} with {per} on each tray. It sells {morning} in the morning "
        f"and {afternoon} in the afternoon. How many {pastry} are left?",
        (Step("The bakery bakes", f"{trays} * {per}", baked, pastry),
         Step("It sells", f"{morning} + {afternoon}", sold, pastry),
         Step("Left over:", f"{baked} - {sold}", baked - sold, pastry)),
        baked - sold,
        f"baked = {trays} * {per}\nsold = {morning} + {afternoon}\nprint(baked - sold)",
    )


TEMPLATES: tuple[Callable[[random.Random], Problem], ...] = (
    _shopping, _trip, _sharing, _discount, _fence, _average, _reading, _savings, _equation, _recipe, _ages,
    _factory, _tickets, _sequence, _percent, _tank, _bakery,
)


# Two-step problems: the short worked solutions of the test set Dt (see settings.py).
SHORT_TEMPLATES = (_average, _reading, _savings, _equation, _recipe, _ages, _factory, _sequence, _percent, _tank)


def make_problem(r: random.Random, short: bool = False) -> Problem:
    """One English word problem from a random template (``short``: a two-step one)."""
    return r.choice(SHORT_TEMPLATES if short else TEMPLATES)(r)


# ---- Chinese (TAL-SCQ5K-CN keeps its text in Chinese) -----------------------------------------------------------

NAMES_ZH = ("小明", "小红", "小刚", "小丽", "小华", "小军", "小芳", "小杰")
GOODS_ZH = (("铅笔", "支"), ("笔记本", "本"), ("橡皮", "块"), ("尺子", "把"), ("故事书", "本"), ("水彩笔", "盒"))


def _shopping_zh(r: random.Random) -> Problem:
    name, ((g1, m1), (g2, m2)) = r.choice(NAMES_ZH), r.sample(GOODS_ZH, 2)
    a, p, b, q = r.randint(2, 9), r.randint(2, 9), r.randint(2, 6), r.randint(3, 12)
    t1, t2 = a * p, b * q
    return Problem(
        f"{name}买了{a}{m1}{g1}，每{m1}{p}元，又买了{b}{m2}{g2}，每{m2}{q}元。{name}一共花了多少元？",
        (Step(f"{g1}一共花了", f"{a} * {p}", t1, "元"), Step(f"{g2}一共花了", f"{b} * {q}", t2, "元"),
         Step("合计", f"{t1} + {t2}", t1 + t2, "元")),
        t1 + t2,
        f"first = {a} * {p}\nsecond = {b} * {q}\nprint(first + second)",
    )


def _reading_zh(r: random.Random) -> Problem:
    name = r.choice(NAMES_ZH)
    per, days, done = r.randrange(10, 31, 5), r.randint(4, 15), r.randrange(20, 121, 10)
    pages = done + per * days
    return Problem(
        f"一本书有{pages}页，{name}已经读了{done}页，以后每天读{per}页。还要几天才能读完？",
        (Step("还剩", f"{pages} - {done}", pages - done, "页"), Step("需要", f"{pages - done} / {per}", days, "天")),
        days,
        f"left = {pages} - {done}\nprint(left // {per})",
    )


def _sequence_zh(r: random.Random) -> Problem:
    first, diff, n = r.randint(1, 15), r.randint(2, 7), r.choice((6, 8, 10, 12))
    last = first + (n - 1) * diff
    return Problem(
        f"一个等差数列的首项是{first}，公差是{diff}。这个数列前{n}项的和是多少？",
        (Step(f"第{n}项是", f"{first} + {n - 1} * {diff}", last),
         Step(f"前{n}项的和是", f"{n} * ({first} + {last}) / 2", n * (first + last) // 2)),
        n * (first + last) // 2,
        f"terms = [{first} + {diff} * k for k in range({n})]\nprint(sum(terms))",
    )


def _equation_zh(r: random.Random) -> Problem:
    a, x, b = r.randint(2, 9), r.randint(1, 15), r.randint(1, 30)
    c = a * x + b
    return Problem(
        f"解方程：{a}x + {b} = {c}，x 等于多少？",
        (Step(f"两边同时减去{b}，得 {a}x =", f"{c} - {b}", a * x), Step(f"两边同时除以{a}，得 x =", f"{a * x} / {a}", x)),
        x,
        f"a, b, c = {a}, {b}, {c}\nprint((c - b) // a)",
    )


def _trees_zh(r: random.Random) -> Problem:
    gap, trees = r.choice((2, 3, 4, 5)), r.randint(8, 30)
    return Problem(
        f"在一条路的一边种树，两端都种，每隔{gap}米种一棵，一共种了{trees}棵。这条路长多少米？",
        (Step("间隔数是", f"{trees} - 1", trees - 1, "个"), Step("路长", f"{trees - 1} * {gap}", (trees - 1) * gap, "米")),
        (trees - 1) * gap,
        f"gaps = {trees} - 1\nprint(gaps * {gap})",
    )


TEMPLATES_ZH: tuple[Callable[[random.Random], Problem], ...] = (
    _shopping_zh, _reading_zh, _sequence_zh, _equation_zh, _trees_zh,
)


def make_problem_zh(r: random.Random) -> Problem:
    """One Chinese word problem from a random template."""
    return r.choice(TEMPLATES_ZH)(r)
