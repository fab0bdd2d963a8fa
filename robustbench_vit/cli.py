"""Command line: parses arguments and calls one library function per command."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from robustbench_vit.errors import UserError

STORAGE_WAIT_ENV = "ROBUSTBENCH_VIT_STORAGE_WAIT_S"  # see store/resilient.py
COMMANDS = "robustbench_vit.commands"  # each subcommand names its module there (`entry`), with a main(args)


def add_storage_options(p: argparse.ArgumentParser) -> None:
    """Options every study command shares: where results live."""
    p.add_argument("--runs-dir", default="runs", help="folder for the default SQLite storage (default: runs)")
    p.add_argument("--storage", default=None, help="SQLAlchemy URL (e.g. postgresql://...); overrides --runs-dir")
    p.add_argument("--storage-wait", type=float, default=None, metavar="SECONDS",
                   help="how long to wait for an unreachable storage before giving up (default: 300; workers "
                        "inherit it)")


def add_run_options(r: argparse.ArgumentParser) -> None:
    """Options of every command that runs trials: preset, executor, workers, data root, SLURM, storage."""
    r.add_argument("--preset", default=None, help="a preset of the study (e.g. cifar, paper)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a field of the study file, e.g. train.epochs=20, design.points=64, "
                        "space.lr.high=0.01 (repeatable; YAML values; the study gets its own name, NAME-set-HASH)")
    r.add_argument("--dry-run", action="store_true",
                   help="print the plan (trials, epochs, estimated time or GPU-hours) and exit; nothing is written")
    r.add_argument("--executor", default="auto", choices=["auto", "inline", "local", "slurm"],
                   help="auto: local when --workers > 1, else inline")
    r.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: --trials-per-gpu per GPU, else as many as the study's "
                        "pinned CPU threads fit on this machine, else 1)")
    r.add_argument("--trials-per-gpu", type=int, default=None, metavar="K",
                   help="trials sharing each GPU: K local workers per GPU, K trial workers per one-GPU SLURM job "
                        "(default: the study's trials_per_gpu, else auto: from the model size and GPU memory, "
                        "1 for 1GF and up)")
    r.add_argument("--data-root", default=None, help="dataset folder (cifar10/100, imagefolder)")
    r.add_argument("--slurm-partition", default=None)
    r.add_argument("--slurm-timeout-min", type=int, default=None, help="time limit per trial job (minutes)")
    r.add_argument("--slurm-cpus", type=int, default=None, help="CPUs per job (shared by its trial workers)")
    r.add_argument("--slurm-gpus", type=int, default=None, help="GPUs per trial job")
    r.add_argument("--slurm-array-parallelism", type=int, default=None, help="array tasks running at once")
    r.add_argument("--slurm-ddp", action=argparse.BooleanOptionalAction, default=None,
                   help="one DDP rank per GPU: each trial trains on all --slurm-gpus of its job (paper preset: on)")
    r.add_argument("--slurm-option", action="append", metavar="KEY=VALUE", help="extra sbatch option (repeatable)")
    add_storage_options(r)


def add_until_options(r: argparse.ArgumentParser) -> None:
    """--until-decided and its budget and look schedule (study run, compare, reproduce)."""
    r.add_argument("--until-decided", action="store_true",
                   help="run in looks of paired settings (grids add replicates, random designs more points) until "
                        "every verdict is decided (more / less robust, or equivalent within the margin) or the "
                        "budget is spent; error rates hold at every look (alpha spending); stored trials count")
    r.add_argument("--budget", default=None, metavar="N|Hgpuh",
                   help="with --until-decided: at most N trials over the run's models, or H GPU-hours (e.g. "
                        "3.5gpuh); default 4x the study's fixed design; a larger budget later continues")
    r.add_argument("--look-every", type=int, default=None, metavar="K",
                   help="with --until-decided: settings per model between looks (default: one grid replicate, "
                        "else 8)")


def add_launch_options(r: argparse.ArgumentParser) -> None:
    """The options of a command that launches trials and can run them until decided (study run, compare,
    reproduce): the run options, then --until-decided with its budget and look schedule."""
    add_run_options(r)
    add_until_options(r)


def add_model_parsers(sub: argparse._SubParsersAction) -> None:
    """The `models` and `stems` commands."""
    p = sub.add_parser("models", help="list the built-in models (ViTs and RegNetY) with params, GMACs, activations")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--model", action="append", default=None, metavar="NAME",
                   help="also list this model, e.g. timm:resnet18 (repeatable), at --size")
    p.add_argument("--size", default="micro", help="size of the --model references (default: micro)")
    p.set_defaults(entry="models")
    p = sub.add_parser("stems", help="list the stems (baselines and the zoo): citation, params, GMACs, matched depth")
    p.add_argument("--size", default="micro", help="model size to measure them at (default: micro)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(entry="models")


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """The `train` command."""
    p = sub.add_parser("train", help="train one model once (one trial) and print its final error")
    p.add_argument("--model", default="vit_c_micro",
                   help="built-in model name, regnety_SIZE or timm:NAME (default: vit_c_micro)")
    p.add_argument("--size", default="micro",
                   help="size (input) of a timm:NAME model (default: micro, 1×16×16 like digits)")
    p.add_argument("--dataset", default="digits",
                   help="digits, fashion_mnist, cifar10, cifar100, imagefolder (default: digits)")
    p.add_argument("--data-root", default=None,
                   help="dataset folder (cifar10/100, imagefolder; fashion_mnist: default Debian's package)")
    p.add_argument("--train-subset", type=int, default=None, metavar="N",
                   help="fashion_mnist: train on a fixed stratified subset of N images (default: all)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--wd", type=float, default=0.05, help="weight decay (default: 0.05)")
    p.add_argument("--optimizer", default="adamw", help="adamw or sgd (default: adamw)")
    p.add_argument("--batch-size", type=int, default=None, help="default: 64 (TrialConfig's)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="tensor crop/flip augmentation (default: off; it underfits 10-epoch runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--trial-dir", default=None, help="checkpoint folder; running again resumes from it")
    p.add_argument("--json", action="store_true", help="print one JSON object (progress goes to stderr)")
    p.set_defaults(entry="train")


def add_study_parser(sub: argparse._SubParsersAction) -> None:
    """The `study` command group: run, status, list."""
    p = sub.add_parser("study", help="run studies and watch them (run, status, list)")
    p.set_defaults(entry="study")
    ssub = p.add_subparsers(dest="study_command", required=True)
    r = ssub.add_parser("run", help="run what is left of a study (again: continues where it stopped)")
    r.add_argument("name", help="a study name (studies/NAME.yaml) or a YAML path")
    add_launch_options(r)
    r.add_argument("--detach", action="store_true",
                   help="slurm: submit the jobs and return (run again later to wait, retry and collect)")
    r.add_argument("--json", action="store_true", help="print what ran, where the results are and each "
                   "comparison's headline with its numbers as one JSON object (progress goes to stderr)")
    s = ssub.add_parser("status", help="trial counts by model and status, and where the storage is")
    s.add_argument("name", help="a study name or the YAML path it was run from")
    s.add_argument("--json", action="store_true", help="print {model: {status: count}}")
    add_storage_options(s)
    ls = ssub.add_parser("list", help="the studies available by name")
    ls.add_argument("--json", action="store_true")


def add_analysis_parsers(sub: argparse._SubParsersAction) -> None:
    """The `report`, `export` and `leaderboard` commands."""
    p = sub.add_parser("report", help="write a study's report (HTML, PDF) with metrics, tests and figures")
    p.add_argument("name", help="a study name or the YAML path it was run from")
    p.add_argument("--format", default="html", help="comma-separated: html, pdf (default: html)")
    p.add_argument("--out", default=None, help="output folder (default: reports/NAME/)")
    p.add_argument("--json", action="store_true", help="print each verdict's headline and numbers, and the files, "
                   "as one JSON object")
    add_storage_options(p)
    p.set_defaults(entry="report")
    e = sub.add_parser("export", help="write a study's trials as a table (.csv or .parquet)")
    e.add_argument("name", help="a study name or the YAML path it was run from")
    e.add_argument("--out", required=True, help="output file; the extension picks the format (.csv, .parquet)")
    add_storage_options(e)
    e.set_defaults(entry="export")
    p = sub.add_parser("leaderboard", help="rank every stem in the storage: a static site (index.html, a page per "
                       "stem), CSV, JSON")
    p.add_argument("studies", nargs="*", metavar="STUDY", help="studies to rank in (default: every study stored)")
    p.add_argument("--format", default="html", help="comma-separated: html, csv, json (default: html)")
    p.add_argument("--out", default=None, help="output folder (default: reports/leaderboard/)")
    add_storage_options(p)
    p.set_defaults(entry="leaderboard")


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    """The `compare` command."""
    p = sub.add_parser("compare", help="put your stem against the patchify and conv baselines, then report")
    p.add_argument("--stem", action="append", metavar="STEM",
                   help="path/to/file.py:Class, package.module:Class (a stem or a timm embed layer), a zoo or installed "
                        "stem (robustbench-vit stems); repeat it to run several in one launch and one report "
                        "(default: the study's own stems)")
    p.add_argument("--name", default=None, help="model name in results (default: from the class name and size)")
    p.add_argument("--study", default="lr_wd_stability", help="the study to compare on (default: lr_wd_stability)")
    p.add_argument("--size", default=None, help="model size (default: the study's baselines' size)")
    p.add_argument("--options", default=None, help="stem options as JSON, e.g. '{\"kernel_size\": 5}'")
    p.add_argument("--format", default="html", help="report formats: html, pdf (default: html)")
    p.add_argument("--out", default=None, help="report folder (default: reports/STUDY/)")
    p.add_argument("--claims", nargs="?", const="", default=None, metavar="ID,...",
                   help="score the stem on the paper's claims in ViT_C's place (all, or these ids): a scorecard "
                        "in reports/claims-NAME/")
    p.add_argument("--yes", action="store_true", help="with --claims: launch without asking, even above 100 "
                   "GPU-hours")
    p.add_argument("--json", action="store_true", help="print the report's files and each comparison's headline "
                   "with its numbers (with --claims: the scorecard) as one JSON object (progress goes to stderr)")
    add_launch_options(p)
    p.set_defaults(entry="compare")


def add_check_parsers(sub: argparse._SubParsersAction) -> None:
    """The checks: `reproduce` (the paper's claims, scored) and `calibrate` (the A/A check of a study)."""
    p = sub.add_parser("reproduce", help="score the paper's stability claims on this machine (scorecard)")
    p.add_argument("--claims", default=None, metavar="ID,...", help="only these claims (default: all; ids in "
                   "studies/claims/paper.yaml)")
    p.add_argument("--yes", action="store_true", help="launch without asking, even above 100 GPU-hours")
    p.add_argument("--format", default="html,pdf", help="scorecard formats: html, pdf (default: html,pdf)")
    p.add_argument("--out", default=None, help="reports folder (default: reports/; the scorecard goes to "
                   "reports/reproduce[-PRESET]/)")
    p.add_argument("--json", action="store_true", help="print the scorecard as one JSON object (progress goes to "
                   "stderr)")
    add_launch_options(p)
    p.set_defaults(entry="reproduce")

    p = sub.add_parser("calibrate", help="A/A check: copies of a baseline on a study's settings (noise floor)")
    p.add_argument("name", help="a study name (studies/NAME.yaml) or a path to a study YAML")
    p.add_argument("--model", default=None, help="the model to copy (default: the study's conv-stem model)")
    p.add_argument("--replicas", type=int, default=3, help="independent copies besides the model (default: 3)")
    p.add_argument("--out", default=None, help="where to write the result (default: reports/STUDY/calibration.json)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_run_options(p)
    p.set_defaults(entry="calibrate")


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(prog="robustbench-vit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_model_parsers(sub)
    add_train_parser(sub)
    add_study_parser(sub)
    add_analysis_parsers(sub)
    add_compare_parser(sub)
    add_check_parsers(sub)
    return parser


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command: its module's main(args)."""
    # The one deliberate lazy load of the CLI: a command module is imported only when it runs, by name. The commands
    # pull in torch, timm, optuna, pandas and matplotlib (seconds to import); `robustbench-vit --help`, a mistyped
    # flag and every other command must not pay for them.
    module = importlib.import_module(f"{COMMANDS}.{args.entry}")
    return int(module.main(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    args = build_parser().parse_args(argv)
    wait, before = getattr(args, "storage_wait", None), os.environ.get(STORAGE_WAIT_ENV)
    if wait is not None:  # read by every storage this command opens, and inherited by its workers
        os.environ[STORAGE_WAIT_ENV] = str(wait)
    try:
        return dispatch(args)
    except UserError as e:
        print(f"robustbench-vit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robustbench-vit: interrupted", file=sys.stderr)
        return 130
    finally:  # a caller of main() in the same process keeps its own setting
        if wait is not None and before is None:
            os.environ.pop(STORAGE_WAIT_ENV, None)
        elif wait is not None:
            os.environ[STORAGE_WAIT_ENV] = before


if __name__ == "__main__":
    sys.exit(main())
