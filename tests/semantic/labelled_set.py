"""A small labelled search set: three users' memories and queries with the expected hit.

Written for memmesh's semantic tests; every query names one memory of its user's scope,
and some queries (allergies, preferences) have a plausible answer in another user's scope
too, so scope filtering is exercised along with meaning.
"""

from __future__ import annotations

MEMORIES: dict[str, tuple[str, str]] = {
    # key: (user_id, text)
    "a1": ("alice", "Alice is allergic to peanuts."),
    "a2": ("alice", "Alice prefers window seats on flights."),
    "a3": ("alice", "Alice's daughter Maya starts school in September."),
    "a4": ("alice", "Alice works as a data engineer at a logistics company."),
    "a5": ("alice", "Alice wants weekly summaries sent on Monday mornings."),
    "a6": ("alice", "Alice's favourite cuisine is Thai food."),
    "a7": ("alice", "Alice is training for a half marathon in October."),
    "a8": ("alice", "Alice uses a MacBook with an M2 chip."),
    "a9": ("alice", "Alice's landlord raised the rent by 8 percent."),
    "a10": ("alice", "Alice speaks Portuguese and a little Japanese."),
    "b1": ("bob", "Bob's production database runs PostgreSQL 15."),
    "b2": ("bob", "Bob deploys the backend every Friday afternoon."),
    "b3": ("bob", "Bob is vegetarian and avoids fish."),
    "b4": ("bob", "Bob's team uses Kubernetes on AWS."),
    "b5": ("bob", "Bob has a dog named Biscuit."),
    "b6": ("bob", "Bob prefers answers in bullet points."),
    "b7": ("bob", "Bob's on-call rotation is the first week of each month."),
    "b8": ("bob", "Bob is learning Rust in his spare time."),
    "b9": ("bob", "Bob lives in Berlin, timezone CET."),
    "b10": ("bob", "Bob's API rate limit is 500 requests per minute."),
    "c1": ("carol", "Carol is planning a trip to Kyoto in April."),
    "c2": ("carol", "Carol's budget for the kitchen renovation is 20,000 dollars."),
    "c3": ("carol", "Carol takes blood pressure medication every morning."),
    "c4": ("carol", "Carol plays the cello in a community orchestra."),
    "c5": ("carol", "Carol's car is a blue 2018 Subaru Outback."),
    "c6": ("carol", "Carol wants emails written in a formal tone."),
    "c7": ("carol", "Carol's sister lives in Toronto."),
    "c8": ("carol", "Carol is allergic to cats."),
    "c9": ("carol", "Carol's company fiscal year ends in June."),
    "c10": ("carol", "Carol prefers tea over coffee."),
}

QUERIES: list[tuple[str, str, str]] = [
    # (user_id, query, expected memory key)
    ("alice", "What food can't she eat because of an allergy?", "a1"),
    ("alice", "Where does Alice like to sit on a plane?", "a2"),
    ("alice", "What is Alice's job?", "a4"),
    ("alice", "Which race is Alice preparing for?", "a7"),
    ("alice", "What languages does she speak?", "a10"),
    ("bob", "Which database version is used in production?", "b1"),
    ("bob", "When does Bob ship releases?", "b2"),
    ("bob", "Does Bob eat meat?", "b3"),
    ("bob", "What is the name of Bob's pet?", "b5"),
    ("bob", "How should responses to Bob be formatted?", "b6"),
    ("bob", "Which programming language is Bob studying?", "b8"),
    ("carol", "Where is Carol travelling this spring?", "c1"),
    ("carol", "What instrument does Carol play?", "c4"),
    ("carol", "What kind of vehicle does Carol drive?", "c5"),
    ("carol", "Does Carol drink coffee?", "c10"),
    ("carol", "What is she allergic to?", "c8"),
]

#: Share of queries whose expected memory must rank first with the real model.
TOP1_BAR = 0.85
