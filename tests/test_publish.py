"""Publishing against an in-process stand-in for the Hub: refreshes leave exactly the release's files, dry runs list
the difference, large releases go up in resumable commits, tokens never show; `show` and `publish --dry-run` refuse
damaged or stray files."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from types import SimpleNamespace

import httpx2
import numpy as np
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.hf_api import RepoFile, RepoFolder
from test_release import make_mixture, make_pool, write  # tests/ is on sys.path (pytest rootdir import mode)

from openmathmix.cli import main
from openmathmix.errors import PublishError
from openmathmix.outputs import MARKER
from openmathmix.release import release_files
from openmathmix.release.publish import git_blob_id, publish

FAKE_TOKEN = "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi"  # 34 letters
HUB_METHODS = ("create_repo", "repo_info", "list_repo_tree", "create_commit", "create_tag", "upload_folder")
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"
LFS_SUFFIXES = (".parquet", ".png")  # what the Hub's default .gitattributes stores in LFS


def _http_error(cls, status: int, message: str):
    request = httpx2.Request("POST", "https://huggingface.co/api/datasets/org/x/commit/main")
    return cls(message, response=httpx2.Response(status, request=request))


class FakeHub:
    """An in-process stand-in for `HfApi`: dataset repositories as file maps, every commit's state and every tag.

    It answers the calls `publish` makes the way the Hub does: `list_repo_tree` gives LFS files their sha256 and
    other files their git blob id, `create_commit` checks `parent_commit` and applies add and delete operations.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.exists = False
        self.head: str | None = None
        self.states: dict[str, dict[str, bytes]] = {}  # commit -> the repository's files after it
        self.commits: list[dict] = []  # {"oid", "parent", "message", "ops": [("add" | "delete", path)]}
        self.tags: dict[str, str] = {}
        self.calls: list[str] = []
        self.fail_commit_at: int | None = None  # raise a connection error on this commit (0-based), once

    def _commit(self, message: str) -> str:
        oid = hashlib.sha1(f"{len(self.states)}:{message}".encode()).hexdigest()
        self.states[oid] = dict(self.files)
        self.head = oid
        return oid

    def create_repo(self, repo_id, *, repo_type, private, exist_ok, token=None):
        self.calls.append("create_repo")
        assert repo_type == "dataset" and exist_ok is True
        if not self.exists:
            self.exists, self.private = True, private
            self.files = {".gitattributes": GITATTRIBUTES}
            self._commit("initial commit")

    def repo_info(self, repo_id, *, repo_type, token=None):
        self.calls.append("repo_info")
        if not self.exists:
            raise _http_error(RepositoryNotFoundError, 404, "404 Client Error: Repository Not Found")
        return SimpleNamespace(sha=self.head)

    def list_repo_tree(self, repo_id, *, recursive, revision, repo_type, token=None):
        self.calls.append("list_repo_tree")
        assert recursive is True and revision in self.states
        files = self.states[revision]
        folders = sorted({p.rsplit("/", 1)[0] for p in files if "/" in p})
        for folder in folders:
            yield RepoFolder(path=folder, oid="0" * 40)
        for path, data in sorted(files.items()):
            blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
            lfs = ({"size": len(data), "oid": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
                   if path.endswith(LFS_SUFFIXES) else None)
            yield RepoFile(path=path, size=len(data), oid=blob, lfs=lfs)

    def create_commit(self, repo_id, *, operations, commit_message, repo_type, token=None, parent_commit=None):
        self.calls.append("create_commit")
        if self.fail_commit_at is not None and len(self.commits) == self.fail_commit_at:
            self.fail_commit_at = None
            raise httpx2.ConnectError("connection reset by peer")
        if parent_commit != self.head:
            raise _http_error(HfHubHTTPError, 412, "412 Client Error: Precondition Failed")
        ops = []
        for op in operations:
            if isinstance(op, CommitOperationAdd):
                with open(op.path_or_fileobj, "rb") as f:
                    self.files[op.path_in_repo] = f.read()
                ops.append(("add", op.path_in_repo))
            else:
                assert isinstance(op, CommitOperationDelete) and op.path_in_repo in self.files
                del self.files[op.path_in_repo]
                ops.append(("delete", op.path_in_repo))
        parent = self.head
        oid = self._commit(commit_message)
        self.commits.append({"oid": oid, "parent": parent, "message": commit_message, "ops": ops})
        return SimpleNamespace(oid=oid)

    def create_tag(self, repo_id, *, tag, revision, repo_type, token=None, tag_message=None):
        self.calls.append("create_tag")
        if tag in self.tags:
            raise _http_error(HfHubHTTPError, 409, "409 Client Error: Conflict (tag already exists)")
        self.tags[tag] = revision


def contents(folder) -> dict[str, bytes]:
    """What the repository must hold for a release folder: its files (not the marker) plus the Hub's .gitattributes."""
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in release_files(folder)}
    return {**files, ".gitattributes": GITATTRIBUTES}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """A release with every config and small shards (several files per config)."""
    return write(make_mixture(with_embedding=False), tmp_path_factory.mktemp("pub") / "full",
                 pool=make_pool(with_embedding=False), max_shard_size=1500)


@pytest.fixture(scope="module")
def smaller(tmp_path_factory):
    """A refresh of it: fewer rows, other shard counts, no pool config."""
    mixture = make_mixture(with_embedding=False)
    mixture = mixture.select(np.flatnonzero(np.asarray(mixture["source"]) != "tal_scq5k_cn"))
    return write(mixture, tmp_path_factory.mktemp("pub") / "smaller", max_shard_size=2500,
                 composition=None, subsets={"ratio_40": np.asarray(mixture["qads_rank"]) < 8})


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    """No token anywhere: no HF_TOKEN, and an empty HF_HOME (the login cache is read from it)."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "hf-home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))  # read at import from HF_HOME
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))


@pytest.fixture
def online(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def forbid_hub(monkeypatch):
    """Every Hub method of HfApi raises if called."""

    def boom(*args, **kwargs):
        raise AssertionError("the Hub must not be contacted")

    for name in HUB_METHODS:
        monkeypatch.setattr(HfApi, name, boom, raising=False)


def test_publish_then_a_smaller_refresh_leaves_exactly_the_refresh(full, smaller, no_token, capsys):
    hub = FakeHub()
    first = publish(full, "org/omm", tag="v1", api=hub)
    assert hub.files == contents(full) and MARKER not in hub.files
    assert len(hub.commits) == 1 and hub.tags == {"v1": hub.head} and first.commit == hub.head
    assert sorted(path for _, path in hub.commits[0]["ops"]) == sorted(contents(full).keys() - {".gitattributes"})
    capsys.readouterr()

    dry = publish(smaller, "org/omm", tag="v2", api=hub, dry_run=True)
    out = capsys.readouterr().out
    old, new = contents(full), contents(smaller)
    assert dry.paths("delete") == sorted(old.keys() - new.keys())
    assert dry.paths("add") == sorted(new.keys() - old.keys())
    assert dry.paths("replace") == sorted(p for p in new.keys() & old.keys() - {".gitattributes"} if new[p] != old[p])
    assert dry.paths("keep") == sorted(p for p in new.keys() & old.keys() - {".gitattributes"} if new[p] == old[p])
    pool_files = {p for p in old if p.startswith("data/pool/")}
    assert len(pool_files) > 1 and pool_files <= set(dry.paths("delete"))
    assert "LICENSE.md" in dry.paths("keep") and "README.md" in dry.paths("replace")
    for action in ("add", "replace", "keep", "delete"):
        for path in dry.paths(action):
            assert re.search(rf"^  {action} +[\d.,]* ?[kMG]?B?  {re.escape(path)}$", out, flags=re.MULTILINE), path
    assert len(hub.commits) == 1 and hub.tags == {"v1": first.commit}  # the dry run changed nothing

    second = publish(smaller, "org/omm", tag="v2", api=hub)
    assert hub.files == contents(smaller)  # exactly the refresh: no stale shard of the first release is left
    assert len(hub.commits) == 2 and hub.commits[1]["parent"] == first.commit
    ops = hub.commits[1]["ops"]
    assert sorted(p for op, p in ops if op == "delete") == dry.paths("delete")
    assert sorted(p for op, p in ops if op == "add") == sorted(dry.paths("add") + dry.paths("replace"))
    assert hub.tags == {"v1": first.commit, "v2": second.commit} and second.commit == hub.head
    assert hub.states[hub.tags["v2"]] == contents(smaller) and hub.states[hub.tags["v1"]] == contents(full)


def test_a_large_release_goes_up_in_resumable_commits(full, smaller, no_token, capsys):
    hub = FakeHub()
    publish(smaller, "org/omm", tag="v1", api=hub)
    hub.fail_commit_at = 3  # the third commit of the next publish fails (two went through)
    with pytest.raises(PublishError, match=r"2 of \d+ commit\(s\) reached org/omm") as err:
        publish(full, "org/omm", tag="v2", api=hub, max_commit_files=3)
    assert "re-run to finish" in str(err.value) and "v2" not in hub.tags
    sent_before = {p for c in hub.commits[1:] for op, p in c["ops"] if op == "add"}
    plan = publish(full, "org/omm", tag="v2", api=hub, max_commit_files=3)
    assert hub.files == contents(full) and hub.tags["v2"] == hub.head == plan.commit
    resumed = [c for c in hub.commits[3:]]
    resent = {p for c in resumed for op, p in c["ops"] if op == "add"}
    assert not resent & sent_before  # files committed before the failure are not sent again
    assert all(len([op for op in c["ops"] if op[0] == "add"]) <= 3 for c in resumed)
    final = resumed[-1]["ops"]
    assert {p for op, p in final if op == "add"} >= {"README.md", "manifest.json"}
    assert {p for op, p in final if op == "delete"} == set(contents(smaller)) - set(contents(full))
    for before, after in zip(hub.commits, hub.commits[1:], strict=False):
        assert after["parent"] == before["oid"]
    assert "(part 1 of" in resumed[0]["message"] and resumed[-1]["message"] == "Release v2"


def test_republishing_the_same_release_commits_nothing(full, no_token, capsys):
    hub = FakeHub()
    publish(full, "org/omm", tag="v1", api=hub)
    plan = publish(full, "org/omm", tag="v1.0.1", api=hub)
    assert len(hub.commits) == 1 and plan.commits == [] and hub.tags["v1.0.1"] == hub.tags["v1"]
    assert set(plan.paths("keep")) == set(contents(full)) - {".gitattributes"}
    with pytest.raises(PublishError, match="the tag 'v1' already exists; pass another --tag"):
        publish(full, "org/omm", tag="v1", api=hub)


def test_a_concurrent_push_stops_the_publish(full, smaller, no_token, monkeypatch):
    hub = FakeHub()
    publish(smaller, "org/omm", tag="v1", api=hub)
    real_list = hub.list_repo_tree

    def list_then_someone_pushes(*args, **kwargs):
        yield from real_list(*args, **kwargs)
        hub.files["notes.txt"] = b"pushed by someone else"
        hub._commit("someone else's commit")

    monkeypatch.setattr(hub, "list_repo_tree", list_then_someone_pushes)
    with pytest.raises(PublishError, match="the repository changed while publishing"):
        publish(full, "org/omm", tag="v2", api=hub)
    assert "v2" not in hub.tags


def test_offline_dry_run_lists_every_file_and_touches_nothing(full, forbid_hub, no_token, capsys):
    plan = publish(full, "org/omm-demo", tag="v1", dry_run=True, private=True)
    out = capsys.readouterr().out
    assert "dry run" in out and "org/omm-demo" in out and "private" in out and "tag:     v1" in out
    assert "not read (HF_HUB_OFFLINE is set)" in out
    assert plan.paths("add") == sorted(contents(full).keys() - {".gitattributes"})
    for rel in plan.paths("add"):
        assert f"{rel}\n" in out + "\n"
    assert MARKER not in out
    assert plan.total_bytes == sum(len(v) for k, v in contents(full).items() if k != ".gitattributes")


def test_dry_run_of_a_new_repository(full, no_token, capsys):
    plan = publish(full, "org/new", dry_run=True, api=FakeHub())
    assert "does not exist" in plan.remote and plan.tag == json.loads((full / "manifest.json").read_text())["version"]
    assert plan.paths("delete") == [] and len(plan.paths("add")) == len(contents(full)) - 1


def test_missing_token(full, forbid_hub, no_token, online):
    with pytest.raises(PublishError) as err:
        publish(full, "org/omm-demo")
    message = str(err.value)
    assert "hf auth login" in message and "HF_TOKEN" in message and "Nothing was uploaded" in message


def test_offline_mode(full, forbid_hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PublishError, match="HF_HUB_OFFLINE") as err:
        publish(full, "org/omm-demo")
    assert "Nothing was uploaded" in str(err.value)
    assert "published" not in capsys.readouterr().out


def test_unreachable_hub(full, monkeypatch, online, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)

    def refuse(self, *args, **kwargs):
        raise httpx2.ConnectError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(HfApi, "create_repo", refuse)
    with pytest.raises(PublishError, match="could not be reached") as err:
        publish(full, "org/omm-demo")
    assert "nothing was uploaded" in str(err.value)
    captured = capsys.readouterr()
    assert "published" not in captured.out and FAKE_TOKEN not in captured.out + captured.err + str(err.value)


def test_refused_token(full, monkeypatch, online):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)

    def unauthorised(self, *args, **kwargs):
        raise _http_error(HfHubHTTPError, 401, f"401 Client Error: Unauthorized for token {FAKE_TOKEN}")

    monkeypatch.setattr(HfApi, "create_repo", unauthorised)
    with pytest.raises(PublishError, match="refused the token") as err:
        publish(full, "org/omm-demo")
    assert FAKE_TOKEN not in str(err.value)


def test_the_env_token_reaches_hfapi_and_is_never_printed(full, monkeypatch, online, capsys):
    """The real HfApi class, with its network methods routed to the stand-in: every call carries the token."""
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    hub, seen = FakeHub(), []
    for name in ("create_repo", "repo_info", "list_repo_tree", "create_commit", "create_tag"):
        def route(self, *args, _name=name, **kwargs):
            seen.append((_name, self.token, kwargs.get("token")))
            return getattr(hub, _name)(*args, **kwargs)
        monkeypatch.setattr(HfApi, name, route)
    plan = publish(full, "org/omm-demo", tag="v0.1.0", private=True)
    assert [name for name, _, _ in seen] == ["create_repo", "repo_info", "list_repo_tree", "create_commit",
                                             "create_tag"]
    assert all(api_token == FAKE_TOKEN and call_token == FAKE_TOKEN for _, api_token, call_token in seen)
    assert hub.private is True and hub.files == contents(full) and hub.tags == {"v0.1.0": plan.commit}
    captured = capsys.readouterr()
    assert FAKE_TOKEN not in captured.out + captured.err
    assert "published" in captured.out and "tag v0.1.0" in captured.out
    for path in full.rglob("*"):
        assert not path.is_file() or FAKE_TOKEN.encode() not in path.read_bytes()


def test_blob_ids_match_git(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert git_blob_id(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object hello.txt`


def test_invalid_release_or_repo(tmp_path, full, forbid_hub):
    with pytest.raises(PublishError, match="does not exist"):
        publish(tmp_path / "missing", "org/x", dry_run=True)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "README.md").write_text("---\nlicense: mit\n---\n")
    with pytest.raises(PublishError, match="manifest.json"):
        publish(tmp_path / "half", "org/x", dry_run=True)
    with pytest.raises(PublishError, match="ORG/NAME"):
        publish(full, "just-a-name", dry_run=True)
    with pytest.raises(PublishError, match="invalid --repo-id"):
        publish(full, "org/bad..name", dry_run=True)


@pytest.fixture
def damaged(tmp_path, full):
    copy = tmp_path / "copy"
    shutil.copytree(full, copy)
    return copy


def flip_bytes(path, at: int = 200) -> None:
    data = bytearray(path.read_bytes())
    data[at:at + 4] = bytes(b ^ 0xFF for b in data[at:at + 4])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("target", ["data/ratio_10/train-00000-of-00001.parquet", "README.md"])
def test_show_and_dry_run_detect_a_same_size_corruption(damaged, target, forbid_hub, capsys):
    assert main(["show", str(damaged)]) == 0  # the copy is sound (the marker file is expected)
    capsys.readouterr()
    size = (damaged / target).stat().st_size
    flip_bytes(damaged / target)
    assert (damaged / target).stat().st_size == size
    for argv in (["show", str(damaged)], ["publish", str(damaged), "--repo-id", "org/x", "--dry-run"]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert f"{target} in {damaged} does not match its sha256 in manifest.json" in captured.err
        assert "Restore it or rebuild the release" in captured.err
        assert "Traceback" not in captured.out + captured.err


def test_stray_files_are_refused_and_hub_bookkeeping_is_not(damaged, forbid_hub, capsys):
    (damaged / ".gitattributes").write_bytes(GITATTRIBUTES)
    (damaged / ".cache" / "huggingface").mkdir(parents=True)
    (damaged / ".cache" / "huggingface" / "download.lock").write_text("")
    assert main(["publish", str(damaged), "--repo-id", "org/x", "--dry-run"]) == 0
    capsys.readouterr()
    shutil.copy(damaged / "data/ratio_10/train-00000-of-00001.parquet", damaged / "data/ratio_10/train-old.parquet")
    (damaged / ".notes.txt").write_text("an editor's backup")
    for argv in (["show", str(damaged)], ["publish", str(damaged), "--repo-id", "org/x", "--dry-run"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "holds 2 file(s) that manifest.json does not list: .notes.txt, data/ratio_10/train-old.parquet" in err
        assert "remove these files or rebuild the release" in err


def test_publish_scans_parquet_rows_for_tokens(damaged, no_token, capsys):
    """A release whose manifest matches (say, edited by hand) but whose rows carry a token is never uploaded."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rel = "data/ratio_40/train-00001-of-00003.parquet"
    table = pq.read_table(damaged / rel)
    answers = table.column("answer").to_pylist()
    answers[2] = f"my key is {FAKE_TOKEN}"
    pq.write_table(table.set_column(table.schema.get_field_index("answer"), "answer", pc.cast(answers, "string")),
                   damaged / rel)
    manifest = json.loads((damaged / "manifest.json").read_text())
    data = (damaged / rel).read_bytes()
    manifest["files"][rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    hub = FakeHub()
    for dry_run in (True, False):
        with pytest.raises(PublishError, match=f"row 2 of column 'answer' in .*{rel}") as err:
            publish(damaged, "org/x", tag="v1", dry_run=dry_run, api=hub)
        assert FAKE_TOKEN not in str(err.value)
    assert hub.calls == [] and FAKE_TOKEN not in capsys.readouterr().out


def test_cli_publish_dry_run(full, forbid_hub, capsys):
    assert main(["publish", str(full), "--repo-id", "org/omm-demo", "--dry-run", "--tag", "v9"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "tag:     v9" in out and "manifest.json" in out
    assert main(["publish", str(full), "--repo-id", "not a repo", "--dry-run"]) == 2
    assert "invalid --repo-id" in capsys.readouterr().err
