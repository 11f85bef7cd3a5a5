"""tlgan_base.trainloop: checkpoints and resume, patience, progress, log.jsonl, export."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from tlgan_base.artifact import ArtifactError, load_config
from tlgan_base.trainloop import (
    CHECKPOINT,
    STATE_JSON,
    JsonlLog,
    LoopProgress,
    Patience,
    Stopwatch,
    export_artifact,
    has_checkpoint,
    load_checkpoint,
    load_tensors,
    module_tensors,
    optimizer_from_flat,
    optimizer_to_flat,
    save_checkpoint,
    save_tensors_atomic,
    split_prefix,
)


def _trained_pair() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.5, 0.9))
    for _ in range(3):
        loss = model(torch.randn(8, 3)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, opt


def test_checkpoint_round_trip_resumes_model_optimizer_and_state(tmp_path: Path) -> None:
    model, opt = _trained_pair()
    tensors = {f"m.{k}": v for k, v in module_tensors(model).items()}
    opt_t, opt_meta = optimizer_to_flat(opt, "opt")
    tensors.update(opt_t)
    assert not has_checkpoint(tmp_path)
    save_checkpoint(tmp_path, tensors, {"step": 3, "best": float("inf"), "optimizer": opt_meta})
    assert has_checkpoint(tmp_path)
    assert json.loads((tmp_path / STATE_JSON).read_text())["step"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left

    loaded, state = load_checkpoint(tmp_path)
    assert state["step"] == 3 and state["best"] == float("inf")
    torch.manual_seed(1)
    model2 = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    opt2 = torch.optim.Adam(model2.parameters(), lr=1.0)
    model2.load_state_dict(split_prefix(loaded, "m"))
    optimizer_from_flat(opt2, "opt", loaded, state["optimizer"])
    assert opt2.param_groups[0]["betas"] == (0.5, 0.9) and opt2.param_groups[0]["lr"] == 1e-2
    for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # the next step of both is the same step
    x = torch.randn(8, 3)
    for m, o in ((model, opt), (model2, opt2)):
        loss = m(x).pow(2).mean()
        o.zero_grad()
        loss.backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_load_checkpoint_refuses_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path)
    save_tensors_atomic(tmp_path / CHECKPOINT, {"x": torch.zeros(2)})  # no state document
    with pytest.raises(ArtifactError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path)


def test_tensors_are_written_atomically_with_metadata(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sub" / "best.safetensors"
    save_tensors_atomic(path, {"w": torch.arange(6.0).view(2, 3).t()}, {"fd": "1.5"})
    got = load_tensors(path)
    assert torch.equal(got["w"], torch.arange(6.0).view(2, 3).t())
    assert [p.name for p in path.parent.iterdir()] == ["best.safetensors"]
    with pytest.raises(ArtifactError, match="cannot read tensors"):
        load_tensors(tmp_path / "missing.safetensors")

    def fail(tensors: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"half a fi")
        raise RuntimeError("disk full")

    before = path.read_bytes()
    monkeypatch.setattr("tlgan_base.trainloop.save_file", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        save_tensors_atomic(path, {"w": torch.zeros(3)})
    assert path.read_bytes() == before  # a failed write leaves the old file
    assert [p.name for p in path.parent.iterdir()] == ["best.safetensors"]


@pytest.mark.parametrize(("mode", "scores", "bests", "stops_after"), [
    ("min", [3.0, 2.0, 2.0, 1.0, 1.5, 1.6, 0.5], [3.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.5], 6),
    ("max", [0.5, 0.7, 0.6, 0.65], [0.5, 0.7, 0.7, 0.7], 4),
])
def test_patience_tracks_the_best_and_stops_after_patience_bad_evaluations(
        mode: str, scores: list[float], bests: list[float], stops_after: int) -> None:
    p = Patience(2, mode=mode)
    stopped_at = None
    for i, (score, best) in enumerate(zip(scores, bests, strict=True), start=1):
        p.update(score, i)
        assert p.best == best
        if p.exhausted and stopped_at is None:
            stopped_at = i
    assert stopped_at == stops_after
    assert p.best_at == scores.index(bests[-1]) + 1
    assert p.bad == (0 if mode == "min" else 2)


def test_patience_zero_never_stops_and_nan_never_improves() -> None:
    p = Patience(0, mode="min", best=float("inf"))
    assert not p.update(float("nan"), 1) and p.best == float("inf") and p.bad == 1
    for i in range(2, 50):
        p.update(10.0 + i, i)
    assert not p.exhausted
    assert Patience(mode="max", best=-1.0).update(-0.5, 3)
    with pytest.raises(ValueError, match="mode"):
        Patience(mode="lowest")
    with pytest.raises(ValueError, match="patience"):
        Patience(-1)


def test_stopwatch_budget() -> None:
    now = [100.0]
    watch = Stopwatch(10.0, clock=lambda: now[0])
    assert watch.elapsed() == 0.0 and watch.fraction() == 0.0 and not watch.expired()
    now[0] = 107.5
    assert watch.fraction() == 0.75 and not watch.expired()
    now[0] = 110.0
    assert watch.expired()
    assert Stopwatch().fraction() is None and not Stopwatch().expired()
    with pytest.raises(ValueError, match="budget_s"):
        Stopwatch(0.0)


def test_jsonl_log_appends_and_never_rewrites(tmp_path: Path) -> None:
    log = JsonlLog(tmp_path / "work" / "log.jsonl")
    assert log.read() == []
    log.append({"iteration": 1, "loss": 0.5})
    first = log.path.read_bytes()
    JsonlLog(log.path).append({"iteration": 2, "loss": float("inf")})  # a resumed run
    assert log.path.read_bytes().startswith(first)
    assert log.read() == [{"iteration": 1, "loss": 0.5}, {"iteration": 2, "loss": float("inf")}]
    assert len(log.path.read_text().splitlines()) == 2


def test_loop_progress_reports_steps_and_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    said: list[str] = []
    with LoopProgress(10, desc="train", unit="it", initial=4, log=said.append) as bar:
        for _ in range(6):
            bar.advance(1, loss="0.123")
        bar.say("evaluated")
        assert bar.bar.n == 10
    assert said == ["evaluated"]
    assert "10/10" in err.getvalue() and "loss=0.123" in err.getvalue()
    quiet = io.StringIO()
    monkeypatch.setattr("sys.stderr", quiet)
    with LoopProgress(3, desc="silent", enabled=False) as bar:
        bar.advance(3)
    assert quiet.getvalue() == ""


def test_export_artifact_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "weights"

    def write(tmp: Path) -> None:
        save_tensors_atomic(tmp / "model.safetensors", {"w": torch.ones(2)})

    written = export_artifact(out, {"kind": "test-weights"}, write)
    assert load_config(out, kind="test-weights")["files"] == written["files"]
    assert set(written["files"]) == {"model.safetensors"}
    mode = (out / "model.safetensors").stat().st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask

    def broken(tmp: Path) -> None:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        export_artifact(out, {"kind": "test-weights"}, broken)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["weights"]


def _plan(**kw: object) -> object:
    from tlgan_base.trainloop import StepPlan

    base: dict[str, object] = dict(steps=10, start=0, eval_every=4, checkpoint_every=3,
                                   max_minutes=None, desc="t", formats={"loss": ".3f"},
                                   progress=False)
    base.update(kw)
    return StepPlan(**base)  # type: ignore[arg-type]


def test_run_steps_evaluates_checkpoints_and_stops_where_it_should() -> None:
    from tlgan_base.trainloop import run_steps

    events: list[str] = []

    def step() -> dict[str, float]:
        events.append("s")
        return {"loss": 0.5}

    def evaluate(losses: object, seconds: float, say: object) -> bool:
        events.append("e")
        return False

    reason = run_steps(_plan(), step, evaluate, lambda: events.append("c"), lambda m: None)
    assert reason == "steps"
    assert events.count("s") == 10
    assert events.count("e") == 3          # steps 4, 8 and the last (10)
    assert events.count("c") == 4          # steps 3, 6, 9 and the end
    # resumed at 8: step 9 checkpointed, step 10 (the last) evaluated, the end's checkpoint
    events.clear()
    assert run_steps(_plan(start=8), step, evaluate, lambda: events.append("c"),
                     lambda m: None) == "steps"
    assert events == ["s", "c", "s", "e", "c"]

    events.clear()
    stop = run_steps(_plan(), step, lambda *a: True, lambda: events.append("c"), lambda m: None)
    assert stop == "early_stop" and events.count("s") == 4 and events.count("c") == 2


def test_run_steps_out_of_time_checkpoints_only_when_asked() -> None:
    from tlgan_base.trainloop import run_steps

    saved: list[int] = []
    for flag, expected in ((True, [1]), (False, [])):
        saved.clear()
        reason = run_steps(_plan(max_minutes=1e-9), lambda: {"loss": 0.0}, lambda *a: False,
                           lambda: saved.append(1), lambda m: None,
                           checkpoint_on_timeout=flag)
        assert reason == "max_minutes" and saved == expected


def test_cosine_schedule_decays_to_its_floor_and_stays() -> None:
    from tlgan_base.trainloop import cosine_schedule

    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = cosine_schedule(opt, 4)
    rates = []
    for _ in range(6):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[0] == pytest.approx(1.0) and rates[2] == pytest.approx(0.525)
    assert rates[4] == pytest.approx(0.05) and rates[5] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="steps"):
        cosine_schedule(opt, 0)
