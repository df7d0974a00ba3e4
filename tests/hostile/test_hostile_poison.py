"""Poisoned and contradictory states from a byzantine member (issue 11, cases 2, 3, 6
and 7), against bare replicas and against real trio nodes.  Each test ends with the
promise (:meth:`Mesh.assert_promise`) and checks what the victim shows of the attack."""

from __future__ import annotations

from pathlib import Path

from hostile_mesh import Mesh
from hostile_peer import wall_ms

from memmesh.crdt import Dot
from memmesh.simulations.forgery import (
    Forger,
    created_by,
    memory_state,
    restamped,
    reusing_dot,
    shipping,
    state_of,
    with_element,
)


async def test_states_differing_only_in_created_s_replica_join_to_one_state_in_any_order(
        mode: str, tmp_path: Path) -> None:
    """Case 2: two states of one key whose headers differ only in the replica of
    ``created``, delivered in opposite orders, left two replicas with different bytes
    forever (the join's tie-break could not tell the headers apart)."""
    async with Mesh(mode, tmp_path) as mesh:
        forger = Forger()
        left, right = mesh.member("left"), mesh.member("right")
        mallory = mesh.member("mallory", forger=forger)
        await mesh.link(mallory, left)
        await mesh.link(mallory, right)
        await mesh.start()
        mesh.canary(left)
        wall, origin = wall_ms(), "mallory#forged"
        one = memory_state("case-2", origin, 1, "same text", wall=wall, user_id="carol")
        other = created_by(one, "mallory#other")
        marks = [memory_state(f"case-2-mark-{i}", origin, 2 + i, "mark", wall=wall,
                              user_id="carol") for i in range(2)]
        forger.next("left", shipping(one), shipping(other, marks[0]))
        forger.next("right", shipping(other), shipping(one, marks[1]))
        await mesh.until(lambda: left.replica.get("case-2-mark-0") is not None
                         and right.replica.get("case-2-mark-1") is not None,
                         "each side to receive both states, in opposite orders")
        await mesh.link(left, right)
        await mesh.assert_promise()
        assert left.replica.get("case-2") is not None


async def test_a_new_key_reusing_another_key_s_dot_hides_nothing_from_a_third_replica(
        mode: str, tmp_path: Path) -> None:
    """Case 3: a state for a new key carrying another key's ``(origin, counter)``
    overwrote that key's entry in the delta log, so a third replica never got the real
    memory, even pulling from its author.  (The forgery itself, a valid state of a new
    key, reaches the author only by digest repair: the author's own summary claims
    every event of its origin.)"""
    async with Mesh(mode, tmp_path) as mesh:
        forger, victim, author, mallory = await mesh.attack(peer="author")
        real = mesh.write(author, "the real memory")
        await mesh.until(lambda: mallory.replica.get(real) is not None,
                         "the memory to reach mallory")
        forged = reusing_dot(state_of(mallory.replica, real), "forged-key", "a forgery")
        forger.next("victim", shipping(forged))
        await mesh.until(lambda: victim.replica.get("forged-key") is not None,
                         "the forgery to be taken (it is a valid state of a new key)")
        late = mesh.member("late")  # a third replica that only hears the victim
        await mesh.link(late, victim)
        await mesh.start(late)
        await mesh.until(lambda: late.replica.get(real) is not None
                         and late.replica.get("forged-key") is not None,
                         "both keys to reach the third replica")
        got = late.replica.get(real)
        assert got is not None and got.text == "the real memory"
        await mesh.assert_promise()


async def test_a_logical_counter_near_the_old_limit_is_refused_and_freezes_no_clock(
        mode: str, tmp_path: Path) -> None:
    """Case 6: one state stamped 590 s ahead (inside the drift bound) with logical part
    ``2**32 - 2`` made every ``add`` and ``sync_apply`` of the victim, and of whoever
    pulled from it, raise ``ClockDriftError`` until the wall clock caught up."""
    async with Mesh(mode, tmp_path) as mesh:
        forger, victim, honest, mallory = await mesh.attack()
        bait = mesh.write(mallory, "bait")
        forged = restamped(state_of(mallory.replica, bait), wall_ms() + 590_000, 2**32 - 2)
        forger.always("victim", shipping(forged))
        await mesh.until(lambda: mesh.refusals(victim)["clock-logical"] >= 1, "the refusal")
        mesh.write(victim, "the victim still writes")
        mesh.write(honest, "and its peers still sync")
        await mesh.assert_promise()
        assert victim.replica.get(bait) is None


async def test_a_set_element_true_is_refused_alone_and_the_set_stays_usable(
        mode: str, tmp_path: Path) -> None:
    """Case 7: ``True`` inside a synced set state was accepted, then failed every later
    merge of the key: local ``set_add`` and every payload carrying it were refused."""
    async with Mesh(mode, tmp_path) as mesh:
        forger, victim, honest, mallory = await mesh.attack()
        honest.replica.set_add("tags", "x")
        await mesh.until(lambda: mallory.replica.set_members("tags") == {"x"},
                         "the set to reach mallory")
        origin = mallory.inner._stamps.own_origin()
        poisoned = with_element(state_of(mallory.replica, "tags"), True, Dot(origin, 10**6))
        forger.always("victim", shipping(poisoned))
        relayed = mesh.write(mallory, "an honest memory mallory ships beside the poison")
        await mesh.until(lambda: victim.replica.get(relayed) is not None,
                         "the rest of the payload to apply")
        await mesh.until(lambda: mesh.refusals(victim)["invalid"] >= 1, "the refusal")
        victim.replica.set_add("tags", "local")  # the key is not poisoned
        honest.replica.set_add("tags", "y")
        await mesh.until(lambda: victim.replica.set_members("tags") == {"x", "y", "local"},
                         "payloads carrying the key to keep applying")
        await mesh.assert_promise()
