"""The doorbell between processes on one SQLite file: a waiting receive in one instance wakes
on another instance's publish at once, without waiting for a poll; a lost ring is caught by
the fallback poll; a dead peer's socket is cleared away."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import Delivery
from motet.backends._sqlite_doorbell import Doorbell, doorbell_folder

from .contract import ContractTools, datas, env, sub
from .test_sqlite_durability import opened


class TestDoorbell(ContractTools):
    quiet_seconds = 0.2

    async def test_a_publish_in_another_instance_wakes_a_waiting_receive_at_once(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        path = tmp_path / "motet.db"
        s = sub()
        got: list[Delivery] = []
        async with opened(path, clock) as worker, opened(path, clock) as publisher:
            assert worker.doorbell is not None and worker.doorbell.up
            await worker.declare([s])
            async with trio.open_nursery() as nursery:

                async def consumer() -> None:
                    got.extend(await worker.receive(s, 10))

                nursery.start_soon(consumer)
                await self.quiet()
                await publisher.publish([env("hello")])
                await self.quiet()  # no clock movement: no poll has run
                if not got:
                    nursery.cancel_scope.cancel()
            assert publisher.doorbell is not None and publisher.doorbell.sent >= 1
        assert datas(got) == ["hello"]

    async def test_a_lost_ring_is_caught_by_the_fallback_poll(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        path = tmp_path / "motet.db"
        s = sub()
        got: list[Delivery] = []
        async with (
            opened(path, clock, doorbell_poll=1.0) as worker,
            opened(path, clock, doorbell_poll=None) as silent,  # rings nobody
        ):
            await worker.declare([s])
            async with trio.open_nursery() as nursery:

                async def consumer() -> None:
                    got.extend(await worker.receive(s, 10))

                nursery.start_soon(consumer)
                await self.quiet()
                await silent.publish([env("hello")])
                await self.quiet()
                assert got == []
                mock_clock.jump(0.5)  # the 50 ms poll is replaced while the doorbell works
                await self.quiet()
                assert got == []
                mock_clock.jump(0.5)
                await self.quiet()
                if not got:
                    nursery.cancel_scope.cancel()
        assert datas(got) == ["hello"]

    async def test_a_dead_peers_socket_is_removed_and_the_folder_cleared_on_close(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        path = tmp_path / "motet.db"
        folder = doorbell_folder(path)
        s = sub()
        async with opened(path, clock) as a:
            await a.declare([s])
            # A process killed with -9 leaves its socket file behind, bound by nobody.
            dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            dead.bind(os.fspath(folder / "1-deadbeef0000.sock"))
            dead.close()
            assert (folder / "1-deadbeef0000.sock").exists()
            await a.publish([env("x")])
            assert not (folder / "1-deadbeef0000.sock").exists()
            own = a.doorbell.path if a.doorbell else None
            assert own is not None and own.exists()
        assert not own.exists()
        assert not folder.exists()  # the last peer removes the empty folder


async def test_a_path_too_long_for_a_socket_address_uses_a_private_temp_folder(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "motet.db"
    folder = doorbell_folder(deep)
    assert folder.parent != deep.parent
    assert len(os.fsencode(folder / ("0" * 24 + ".sock"))) <= 100
    bell = Doorbell(deep)
    try:
        assert bell.bind()
        assert folder.stat().st_mode & 0o077 == 0
    finally:
        bell.close()


def test_every_name_of_one_file_gives_one_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    absolute = tmp_path / "motet.db"
    assert doorbell_folder(Path("../motet.db")) == doorbell_folder(absolute)
