"""Failed sign-ins counted per username and per client address in Redis; over the limit, 429.

Fixed windows: the first failure of a username (or address) starts a window of
``signin_window_s`` seconds, and once ``signin_max_failures_per_user`` (or ``..._per_address``)
failures are counted in it, every attempt is refused until it ends, with a correct password
too. A successful sign-in clears its username's count (not its address's: one good account
does not buy an address more guesses at others). Counts live in Redis, so every API process
sees the same ones; usernames are hashed into the keys (any text fits, none is stored).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from api.errors import RateLimitedError

if TYPE_CHECKING:
    import redis

PREFIX = "courier:signin"

#: Count a failure on each key; a key without an expiry (new) starts its window. Atomic, so a
#: window that ends between the two steps cannot leave a count that never expires.
_COUNT = """
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[1]) end
end
return 1
"""


def _user_key(username: str) -> str:
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"{PREFIX}:user:{digest}"


def _address_key(address: str) -> str:
    return f"{PREFIX}:addr:{address[:64]}"


class SignInLimits:
    """Count failed sign-ins in Redis and refuse attempts over the limits.

    Parameters
    ----------
    client
        The Redis client.
    per_user, per_address
        Failures allowed in one window per username and per client address; 0 turns a
        limit off.
    window_s
        Length of a window (seconds).
    """

    def __init__(
        self, client: redis.Redis, *, per_user: int, per_address: int, window_s: int
    ) -> None:
        self.client = client
        self.per_user = per_user
        self.per_address = per_address
        self.window_s = window_s
        self._count = client.register_script(_COUNT)

    def check(self, username: str, address: str) -> None:
        """Refuse an attempt when the username or the address has used up its failures.

        Raises
        ------
        RateLimitedError
            With the seconds until the window that blocks ends.
        """
        keys = [(_user_key(username), self.per_user), (_address_key(address), self.per_address)]
        pipe = self.client.pipeline(transaction=False)
        for key, _ in keys:
            pipe.get(key)
            pipe.ttl(key)
        replies = pipe.execute()
        waits = []
        for i, (_, limit) in enumerate(keys):
            count, ttl = replies[2 * i], replies[2 * i + 1]
            if limit > 0 and count is not None and int(count) >= limit:
                waits.append(ttl if ttl > 0 else self.window_s)
        if waits:
            wait = max(waits)
            msg = f"too many failed sign-ins; try again in {wait} s"
            raise RateLimitedError(msg, retry_after_s=wait)

    def failed(self, username: str, address: str) -> None:
        """Count one failed attempt for the username and the address."""
        self._count(keys=[_user_key(username), _address_key(address)], args=[self.window_s])

    def succeeded(self, username: str) -> None:
        """Forget the username's failures after a successful sign-in."""
        self.client.delete(_user_key(username))
