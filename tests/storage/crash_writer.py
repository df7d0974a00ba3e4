"""Child process of the crash test: write forever, print each acknowledged write.

A line is printed only after the call that made the write has returned, i.e. after
its transaction committed; the parent SIGKILLs this process at a random instant.
"""

from __future__ import annotations

import sys

from memmesh.storage import Replica


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    with Replica.open(path) as replica:
        known: list[str] = []
        i = 0
        while True:
            i += 1
            if i % 7 == 0 and known:
                target = known[(i * 31 + seed) % len(known)]
                text = f"update {seed}-{i}"
                replica.update(target, text)
                print(f"U {target} {text}", flush=True)
            elif i % 5 == 0:
                with replica.batch():
                    ids = [replica.add(f"batched {seed}-{i}-{j}", user_id="crash")
                           for j in range(5)]
                for mid in ids:
                    print(f"A {mid}", flush=True)
                known.extend(ids)
            else:
                mid = replica.add(f"single {seed}-{i} " + "x" * (i % 300), user_id="crash")
                print(f"A {mid}", flush=True)
                known.append(mid)


if __name__ == "__main__":
    main()
