"""Publishing: dry run, token and offline errors, and an upload with HfApi's methods replaced by recorders."""

from __future__ import annotations

import json

import httpx2
import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError
from test_release import make_mixture, write  # tests/ is on sys.path (pytest rootdir import mode)

from openmathmix.errors import PublishError
from openmathmix.release.publish import plan_upload, publish
from openmathmix.release import release_files

FAKE_TOKEN = "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi"  # 34 letters
HUB_METHODS = ("create_repo", "upload_folder", "upload_large_folder", "create_tag", "dataset_info", "whoami")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return write(make_mixture(with_embedding=False), tmp_path_factory.mktemp("pub") / "demo")


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
    """Every Hub method raises if called."""

    def boom(*args, **kwargs):
        raise AssertionError("the Hub must not be contacted")

    for name in HUB_METHODS:
        monkeypatch.setattr(HfApi, name, boom, raising=False)


@pytest.fixture
def recorder(monkeypatch):
    """HfApi methods that record their calls and answer like the Hub would."""
    calls = []

    class Commit:
        oid = "0123456789abcdef0123456789abcdef01234567"

    def record(name, result=None):
        def method(self, *args, **kwargs):
            calls.append((name, args, kwargs, self.token))
            return result
        return method

    monkeypatch.setattr(HfApi, "create_repo", record("create_repo", "https://huggingface.co/datasets/org/x"))
    monkeypatch.setattr(HfApi, "upload_folder", record("upload_folder", Commit()))
    monkeypatch.setattr(HfApi, "create_tag", record("create_tag"))
    return calls


def test_dry_run_lists_files_and_touches_nothing(release, forbid_hub, no_token, capsys):
    plan = publish(release, "org/omm-demo", tag="v1", dry_run=True, private=True)
    out = capsys.readouterr().out
    assert "dry run" in out and "org/omm-demo" in out and "private" in out and "tag:     v1" in out
    for path in release_files(release):
        rel = path.relative_to(release).as_posix()
        assert rel in out
    assert "data/ratio_10/train-00000-of-00001.parquet" in out and "README.md" in out
    assert f"total:   {len(plan.files)} files" in out and f"{plan.total_bytes:,} bytes" in out
    assert plan.total_bytes == sum(p.stat().st_size for p in release_files(release))


def test_default_tag_is_the_manifest_version(release):
    version = json.loads((release / "manifest.json").read_text())["version"]
    assert plan_upload(release, "org/x").tag == version


def test_missing_token(release, forbid_hub, no_token, online):
    with pytest.raises(PublishError) as err:
        publish(release, "org/omm-demo")
    message = str(err.value)
    assert "hf auth login" in message and "HF_TOKEN" in message and "Nothing was uploaded" in message


def test_offline_mode(release, forbid_hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PublishError, match="HF_HUB_OFFLINE") as err:
        publish(release, "org/omm-demo")
    assert "Nothing was uploaded" in str(err.value)
    assert "published" not in capsys.readouterr().out


def test_unreachable_hub(release, monkeypatch, online, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)

    def refuse(self, *args, **kwargs):
        raise httpx2.ConnectError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(HfApi, "create_repo", refuse)
    with pytest.raises(PublishError, match="could not be reached") as err:
        publish(release, "org/omm-demo")
    assert "nothing was uploaded" in str(err.value)
    captured = capsys.readouterr()
    assert "published" not in captured.out and FAKE_TOKEN not in captured.out + captured.err + str(err.value)


def test_refused_token(release, monkeypatch, online):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)

    def unauthorised(self, *args, **kwargs):
        request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
        raise HfHubHTTPError("401 Client Error: Unauthorized", response=httpx2.Response(401, request=request))

    monkeypatch.setattr(HfApi, "create_repo", unauthorised)
    with pytest.raises(PublishError, match="refused the token") as err:
        publish(release, "org/omm-demo")
    assert FAKE_TOKEN not in str(err.value)


def test_upload_uses_the_env_token_and_never_prints_it(release, recorder, monkeypatch, online, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    plan = publish(release, "org/omm-demo", tag="v0.1.0", private=True)
    names = [c[0] for c in recorder]
    assert names == ["create_repo", "upload_folder", "create_tag"]
    create, upload, tag = recorder
    assert create[1] == ("org/omm-demo",) and create[2]["repo_type"] == "dataset" and create[2]["exist_ok"] is True
    assert create[2]["private"] is True
    assert upload[2]["folder_path"] == str(release) and upload[2]["repo_type"] == "dataset"
    assert tag[2]["tag"] == "v0.1.0" and tag[2]["revision"] == plan.commit
    for _, _, kwargs, api_token in recorder:
        assert api_token == FAKE_TOKEN and kwargs.get("token", FAKE_TOKEN) == FAKE_TOKEN
    captured = capsys.readouterr()
    assert FAKE_TOKEN not in captured.out + captured.err
    assert "published" in captured.out and "tag v0.1.0" in captured.out
    for path in release_files(release):
        assert FAKE_TOKEN.encode() not in path.read_bytes()


def test_large_release_uses_the_large_folder_upload_when_the_library_has_it(release, monkeypatch, online, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    calls = []

    class Info:
        sha = "feedface" * 5

    monkeypatch.setattr(HfApi, "create_repo", lambda self, *a, **k: calls.append("create_repo"))
    monkeypatch.setattr(HfApi, "upload_large_folder", lambda self, **k: calls.append(("large", k["repo_type"])),
                        raising=False)
    monkeypatch.setattr(HfApi, "dataset_info", lambda self, *a, **k: Info())
    monkeypatch.setattr(HfApi, "create_tag", lambda self, *a, **k: calls.append(("tag", k["revision"])))
    plan = publish(release, "org/omm-demo", large=True)
    assert plan.method == "upload_large_folder"
    assert calls == ["create_repo", ("large", "dataset"), ("tag", Info.sha)]


def test_large_release_falls_back_to_upload_folder(release, monkeypatch):
    monkeypatch.delattr(HfApi, "upload_large_folder", raising=False)
    plan = plan_upload(release, "org/x", large=True)
    assert plan.method == "upload_folder" and any("upload_large_folder" in n for n in plan.notes)
    assert plan_upload(release, "org/x").method == "upload_folder"  # a small release


def test_invalid_release_or_repo(tmp_path, release, forbid_hub):
    with pytest.raises(PublishError, match="does not exist"):
        publish(tmp_path / "missing", "org/x", dry_run=True)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "README.md").write_text("---\nlicense: mit\n---\n")
    with pytest.raises(PublishError, match="manifest.json"):
        publish(tmp_path / "half", "org/x", dry_run=True)
    with pytest.raises(PublishError, match="ORG/NAME"):
        publish(release, "just-a-name", dry_run=True)
    with pytest.raises(PublishError, match="invalid --repo-id"):
        publish(release, "org/bad..name", dry_run=True)


def test_cli_publish_dry_run(release, forbid_hub, capsys):
    from openmathmix.cli import main

    assert main(["publish", str(release), "--repo-id", "org/omm-demo", "--dry-run", "--tag", "v9"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "tag:     v9" in out and "manifest.json" in out
    assert main(["publish", str(release), "--repo-id", "not a repo", "--dry-run"]) == 2
    assert "invalid --repo-id" in capsys.readouterr().err
