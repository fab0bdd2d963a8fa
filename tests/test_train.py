"""The one-trial trainer on real tiny runs: determinism, resume, divergence, failure, optimizer and schedule."""

import math

import pytest
import torch
from tests.data_fixtures import write_image_folder

from robustbench_vit.errors import UserError
from robustbench_vit.models import ModelSpec, build_model, matched_depth
from robustbench_vit.train import TrialConfig, run_trial
from robustbench_vit.train.optim import build_optimizer, build_scheduler

C_MICRO = ModelSpec.from_name("vit_c_micro")


def cfg(**kw) -> TrialConfig:
    """A fast digits config (1 thread, 2 epochs) with overrides."""
    return TrialConfig(**{"model": C_MICRO, "epochs": 2, "batch_size": 128, "threads": 1, **kw})


def losses(result) -> list[tuple[float, float]]:
    """(train loss, val error) per epoch, the bits that must match exactly."""
    return [(h.train_loss, h.val_error) for h in result.history]


def test_same_config_same_result_bit_for_bit_on_cpu():
    """Two runs of one config agree exactly; another seed differs; the result carries params / GMACs / device."""
    a, b = run_trial(cfg()), run_trial(cfg())
    assert a.status == "complete" and a.epochs_run == 2 and a.device == "cpu"
    assert losses(a) == losses(b) and a.final_error == b.final_error
    assert losses(run_trial(cfg(seed=1))) != losses(a)
    assert a.params > 100_000 and 0 < a.gmacs < 0.01 and a.min_error == min(h.val_error for h in a.history)
    assert [h.epoch for h in a.history] == [0, 1] and all(h.seconds > 0 for h in a.history)
    assert torch.get_num_threads() == 1


def test_interrupted_trial_resumes_to_the_same_result(tmp_path):
    """Ctrl-C after epoch 1 (raised from the progress hook, after the checkpoint), then run again: same bits.

    Mixup/CutMix, label smoothing and EMA are on so that their state must survive the resume. Mixup draws from
    NumPy's global RNG, which no checkpoint stores: the per-epoch reseed makes the resumed epoch draw the same
    (without it, this test fails: checked by removing `seed_all(epoch_seed(...))` from the loop).
    """
    config = cfg(epochs=3, mixup=0.8, cutmix=1.0, label_smoothing=0.1, ema_decay=0.9)
    straight = run_trial(config, tmp_path / "straight")

    def stop_after_epoch_1(record):
        """Simulate Ctrl-C once epoch 1 is checkpointed."""
        if record.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(config, tmp_path / "cut", progress=stop_after_epoch_1)
    assert (tmp_path / "cut" / "last.pt").is_file() and not list((tmp_path / "cut").glob("*.tmp"))
    seen = []
    resumed = run_trial(config, tmp_path / "cut", progress=seen.append)
    assert [r.epoch for r in seen] == [2] and resumed.resumed_epochs == 2  # only the missing epoch ran
    assert straight.resumed_epochs == 0
    assert losses(resumed) == losses(straight) and resumed.final_error == straight.final_error
    again = run_trial(config, tmp_path / "cut", progress=seen.append)  # finished: returned from the checkpoint
    assert len(seen) == 1 and again.final_error == straight.final_error and again.history == resumed.history


def test_checkpoint_of_another_config_is_refused(tmp_path):
    """Resuming a folder written by a different config is a UserError naming the differing fields."""
    run_trial(cfg(epochs=1), tmp_path)
    with pytest.raises(UserError, match=r"different trial config \(fields differ: lr\)"):
        run_trial(cfg(epochs=1, lr=2e-3), tmp_path)
    assert run_trial(cfg(epochs=1, threads=1, extra={"tag": "x"}), tmp_path).status == "complete"  # runtime fields
    assert run_trial(cfg(epochs=1, stop_hopeless=False), tmp_path).status == "complete"  # the stop rule: not the run


def interrupted(config: TrialConfig, folder, after: int) -> None:
    """Run `config` in `folder` and stop it (as Ctrl-C would) once epoch `after` is checkpointed."""
    def stop(record):
        if record.epoch == after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(config, folder, progress=stop)


def test_torn_checkpoint_falls_back_to_the_previous_one(tmp_path):
    """A last.pt that cannot be loaded (torn by a crash mid-write on a filesystem without atomic rename) is
    skipped for prev.pt, the epoch before: the trial retrains one epoch and ends with the same bits."""
    config = cfg(epochs=3)
    straight = run_trial(config, tmp_path / "straight")
    interrupted(config, tmp_path / "cut", after=1)
    last = tmp_path / "cut" / "last.pt"
    assert torch.load(tmp_path / "cut" / "prev.pt", weights_only=True)["history"][-1]["epoch"] == 0
    last.write_bytes(last.read_bytes()[:1000])  # torn
    seen = []
    resumed = run_trial(config, tmp_path / "cut", progress=seen.append)
    assert [r.epoch for r in seen] == [1, 2] and losses(resumed) == losses(straight)
    assert not list((tmp_path / "cut").glob("*.tmp"))


def test_concurrent_checkpoint_writers_never_share_a_temporary_file(tmp_path):
    """Two writers of one trial folder (a stale-heartbeat retry and the original worker): every write lands
    whole, and the folder always holds a loadable checkpoint."""
    from concurrent.futures import ThreadPoolExecutor

    from robustbench_vit.train.checkpoint import config_key, load_checkpoint, save_checkpoint

    config, path = cfg(), tmp_path / "last.pt"
    state = {"config": config_key(config), "w": torch.randn(200_000)}

    def write(i: int) -> None:
        for _ in range(10):
            save_checkpoint(path, {**state, "writer": i})
            assert load_checkpoint(path, config) is not None

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(write, range(2)))
    assert load_checkpoint(path, config)["writer"] in (0, 1) and not list(tmp_path.glob("*.tmp"))


def test_checkpoint_with_other_arithmetic_is_refused(tmp_path):
    """A checkpoint trained on CUDA with bf16 (edited in here: this machine has no GPU) is not resumed on CPU in
    fp32: one line naming both settings."""
    interrupted(cfg(epochs=2), tmp_path, after=0)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["runtime"] == {"device": "cpu", "amp": False, "compile": False}
    torch.save({**state, "runtime": {"device": "cuda", "amp": True, "compile": False}}, tmp_path / "last.pt")
    with pytest.raises(UserError, match=r"trained with device=cuda, amp=True, compile=False, this run has "
                                        r"device=cpu, amp=False, compile=False"):
        run_trial(cfg(epochs=2), tmp_path)
    assert run_trial(cfg(epochs=2, amp=True), tmp_path / "other").status == "complete"  # amp is a no-op on CPU


def test_divergence_is_a_result_not_an_exception(tmp_path):
    """A huge SGD lr makes the loss non-finite in epoch 0: status diverged, error 100, training stops."""
    r = run_trial(cfg(epochs=5, optimizer="sgd", lr=1e3), tmp_path)
    assert r.status == "diverged" and r.final_error == 100.0 and r.epochs_run == 1
    assert "train loss nan" in r.message or "train loss inf" in r.message
    assert run_trial(cfg(epochs=5, optimizer="sgd", lr=1e3), tmp_path).status == "diverged"  # stored result


def test_loss_growth_beyond_factor_counts_as_divergence():
    """A finite loss above diverge_factor × the first epoch's stops the trial: AdamW at lr 1 after a slow warmup
    trains calmly for two epochs (losses ~3.1, ~3.6), then blows up (~13 > 3 × 3.1)."""
    r = run_trial(cfg(epochs=4, lr=1.0, warmup_epochs=3, warmup_lr_ratio=0.01, diverge_factor=3.0))
    assert r.status == "diverged" and r.final_error == 100.0 and 1 < r.epochs_run < 4
    assert r.history[-1].train_loss > 3.0 * r.history[0].train_loss and r.history[-1].val_error == 100.0
    assert "first epoch" in r.message


def test_first_epoch_is_held_to_the_loss_at_init():
    """Epoch 0 has no earlier epoch to compare with: it is held to ln(10), the loss of the zero-initialised head
    (AdamW at lr 1 without a slow warmup reaches ~11 > 3 × 2.30 in its first epoch)."""
    r = run_trial(cfg(epochs=4, lr=1.0, diverge_factor=3.0))
    assert r.status == "diverged" and r.epochs_run == 1
    assert r.history[0].train_loss > 3.0 * math.log(10) and "at init" in r.message


def test_exception_inside_training_is_a_failed_result(tmp_path):
    """A user stem that breaks on its third real forward pass gives status failed with the message."""
    (tmp_path / "flaky.py").write_text(
        "import torch\n"
        "class Flaky(torch.nn.Module):\n"
        "    calls = 0\n"
        "    def __init__(self, in_chans, embed_dim, patch_size):\n"
        "        super().__init__()\n"
        "        self.proj = torch.nn.Conv2d(in_chans, embed_dim, patch_size, patch_size)\n"
        "    def forward(self, x):\n"
        "        if x.device.type != 'meta':\n"
        "            Flaky.calls += 1\n"
        "            if Flaky.calls == 3:\n"
        "                raise RuntimeError('stem broke')\n"
        "        return self.proj(x)\n")
    spec = ModelSpec(name="flaky_micro", size="micro", stem=f"{tmp_path / 'flaky.py'}:Flaky", depth=2)
    r = run_trial(cfg(model=spec, epochs=2))
    assert r.status == "failed" and r.final_error == 100.0 and r.message == "RuntimeError: stem broke"
    assert r.params is not None and r.epochs_run == 0


@pytest.mark.parametrize(("overrides", "message"), [
    ({"dataset": "mnist"}, "'mnist' is unknown"),
    ({"model": "vit_c_tiny"}, r"vit_c_tiny' takes 3×32px images but dataset 'digits' has 1×16px"),
    ({"dataset": "cifar10", "model": "vit_c_tiny"}, "needs --data-root"),
    ({"batch_size": 63, "mixup": 0.8}, "must be even"),
    pytest.param({"device": "cuda"}, "no CUDA GPU",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
], ids=["dataset", "image-size", "data-root", "odd-mixup-batch", "no-gpu"])
def test_bad_values_raise_before_training(tmp_path, overrides, message):
    """Unknown dataset, image-size mismatch, odd mixup batch, CUDA without a GPU: UserErrors, nothing written."""
    trial = tmp_path / "trial"
    if "model" in overrides:
        overrides = {**overrides, "model": ModelSpec.from_name(overrides["model"])}
    with pytest.raises(UserError, match=message):
        run_trial(cfg(**overrides), trial)
    assert not trial.exists()


def test_optimizers_follow_the_paper():
    """AdamW β (0.9, 0.999); SGD Nesterov momentum 0.9; no decay on biases, norms, pos_embed, cls_token."""
    model = build_model(C_MICRO, 10, depth=matched_depth(C_MICRO))
    names = {id(p): n for n, p in model.named_parameters()}
    adamw = build_optimizer(model, cfg(weight_decay=0.1))
    assert type(adamw).__name__ == "AdamW" and adamw.defaults["betas"] == (0.9, 0.999)
    sgd = build_optimizer(model, cfg(optimizer="sgd", weight_decay=0.1))
    assert type(sgd).__name__ == "SGD" and sgd.defaults["momentum"] == 0.9 and sgd.defaults["nesterov"] is True
    for opt in (adamw, sgd):
        decayed = {names[id(p)] for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
        plain = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
        assert decayed | plain == set(names.values()) and not decayed & plain
        assert {"pos_embed", "cls_token", "head.bias", "norm.weight"} <= plain
        assert all(dict(model.named_parameters())[n].ndim >= 2 for n in decayed) and "head.weight" in decayed


def test_schedule_warms_up_linearly_then_cosine_to_min():
    """Per-iteration schedule: starts at 0.1×lr, reaches lr after the warmup steps, ends at 0.005×lr."""
    model = build_model(C_MICRO, 10, depth=matched_depth(C_MICRO))
    config = cfg(epochs=4, lr=1e-3, warmup_epochs=1)
    opt = build_optimizer(model, config)
    sched = build_scheduler(opt, config, steps_per_epoch=10)
    lrs = [opt.param_groups[0]["lr"]]
    for step in range(1, 41):
        sched.step_update(step)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-4) and lrs[10] == pytest.approx(1e-3)
    assert all(b > a for a, b in zip(lrs[:10], lrs[1:11]))  # linear warmup rises every step
    assert all(b < a for a, b in zip(lrs[10:40], lrs[11:41]))  # cosine falls every step
    assert lrs[40] == pytest.approx(5e-6) and lrs[25] == pytest.approx((1e-3 + 5e-6) / 2, rel=1e-6)


def test_image_folder_trial_through_dataloader_workers(tmp_path):
    """PNG folders train through timm transforms and DataLoader workers, reproducibly (seeded per epoch)."""
    write_image_folder(tmp_path / "data", classes=("a", "b"), n_train=8, n_val=3, size=(36, 36))
    config = cfg(model=ModelSpec.from_name("vit_p_tiny"), dataset="imagefolder", data_root=str(tmp_path / "data"),
                 batch_size=8, augment=True)
    a, b = run_trial(config, tmp_path / "a"), run_trial(config, tmp_path / "b")
    assert a.status == "complete" and a.epochs_run == 2 and losses(a) == losses(b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bf16 autocast, torch.compile)")
def test_cuda_bf16_and_compile():
    """On a GPU: data on the device, bf16 autocast and torch.compile train to a finite, useful result."""
    r = run_trial(cfg(epochs=3, device="cuda", amp=True, compile=True, threads=None))
    assert r.status == "complete" and r.device.startswith("cuda") and r.final_error < 80


def test_benchmark_script_prints_ratio_and_flops():
    """benchmarks/bench_trainer.py runs end to end (tiny settings) and prints both throughputs and the ratio."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_trainer.py"
    p = subprocess.run([sys.executable, str(script), "--epochs", "2", "--repeats", "1", "--threads", "1"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr
    rates = [float(x) for x in re.findall(r"([\d.]+) images/s", p.stdout)]
    ratio = float(re.search(r"ratio trainer / bare\s*:\s*([\d.]+)", p.stdout).group(1))
    assert len(rates) == 2 and all(r > 0 for r in rates) and ratio == pytest.approx(rates[1] / rates[0], rel=1e-2)
    assert re.search(r"fp32 matmul peak\s*:\s*[\d.]+ GFLOP/s", p.stdout) and "% of matmul peak" in p.stdout
    for kind in ("warm", "cold"):  # per-trial overhead of both sides, with their ratio
        line = rf"per-trial overhead, {kind} : trainer [\d.]+ m?s vs bare [\d.]+ m?s .*\(ratio [\d.]+"
        assert re.search(line, p.stdout), p.stdout
