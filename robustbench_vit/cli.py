"""Command line: parses arguments and calls one library function per command."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from robustbench_vit.errors import UserError
from robustbench_vit.store.urls import Results

if TYPE_CHECKING:
    from robustbench_vit.study.options import RunOptions

STORAGE_WAIT_ENV = "ROBUSTBENCH_VIT_STORAGE_WAIT_S"  # see study/resilient.py


def add_storage_options(p: argparse.ArgumentParser) -> None:
    """Options every study command shares: where results live."""
    p.add_argument("--runs-dir", default="runs", help="folder for the default SQLite storage (default: runs)")
    p.add_argument("--storage", default=None, help="SQLAlchemy URL (e.g. postgresql://...); overrides --runs-dir")
    p.add_argument("--storage-wait", type=float, default=None, metavar="SECONDS",
                   help="how long to wait for an unreachable storage before giving up (default: 300; workers "
                        "inherit it)")


def cmd_models(args: argparse.Namespace) -> int:
    """Print the model table (or JSON)."""
    from robustbench_vit.commands.models import models_command

    return models_command(args.json)


def cmd_stems(args: argparse.Namespace) -> int:
    """Print the stem table (or JSON) at a size."""
    from robustbench_vit.commands.models import stems_command

    return stems_command(args.size, args.json)


def cmd_train(args: argparse.Namespace) -> int:
    """`train`: one trial with progress; exit 1 when the trial failed (diverged is a result: exit 0)."""
    from robustbench_vit.commands.train import make_config, train_console

    config = make_config(args.model, dataset=args.dataset, data_root=args.data_root, optimizer=args.optimizer,
                         lr=args.lr, weight_decay=args.wd, epochs=args.epochs, batch_size=args.batch_size,
                         augment=args.augment, seed=args.seed, device=args.device, threads=args.threads)
    return 1 if train_console(config, args.trial_dir, args.json).status == "failed" else 0


def cmd_study(args: argparse.Namespace) -> int:
    """`study run|status|list`: run a study, show its progress, list the available studies."""
    from robustbench_vit.commands import study as commands
    from robustbench_vit.study.files import study_name

    if args.study_command == "list":
        return commands.list_command(args.json)
    if args.study_command == "status":
        return commands.status_command(study_name(args.name), Results.of(args.runs_dir, args.storage), args.json)
    return commands.run_command(args.name, args.preset, run_options(args), overrides=overrides(args),
                                dry_run=args.dry_run, until=until(args))


def overrides(args: argparse.Namespace) -> dict:
    """The --set KEY=VALUE overrides, checked ({dotted key: value})."""
    from robustbench_vit.study.overrides import parse_overrides

    return parse_overrides(args.set)


def run_options(args: argparse.Namespace) -> RunOptions:
    """The options of a command that runs trials, validated once: RunOptions (one error line otherwise)."""
    from robustbench_vit.study.options import RunOptions, SlurmOptions, parse_sbatch_options

    slurm = {"partition": args.slurm_partition, "timeout_min": args.slurm_timeout_min, "cpus_per_task": args.slurm_cpus,
             "gpus_per_node": args.slurm_gpus, "array_parallelism": args.slurm_array_parallelism,
             "additional_parameters": parse_sbatch_options(args.slurm_option) or None, "ddp": args.slurm_ddp}
    return RunOptions.from_flags(runs_dir=args.runs_dir, storage=args.storage, executor=args.executor,
                                 workers=args.workers, trials_per_gpu=args.trials_per_gpu, data_root=args.data_root,
                                 slurm=SlurmOptions(**slurm), detach=getattr(args, "detach", False))


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


def until(args: argparse.Namespace):
    """The --until-decided options (None without the flag; --budget / --look-every alone are refused)."""
    from robustbench_vit.commands.until import Budget, Until
    from robustbench_vit.errors import UserError

    if not args.until_decided:
        given = [f for f, v in (("--budget", args.budget), ("--look-every", args.look_every)) if v is not None]
        if given:
            raise UserError(f"{given[0]} is an option of --until-decided; add --until-decided, or leave it out")
        return None
    return Until(Budget.parse(args.budget), args.look_every)


def cmd_compare(args: argparse.Namespace) -> int:
    """`compare --stem FILE.py:Class`: validate and FLOP-match a stem, run it on the baselines' trials, report."""
    from robustbench_vit.commands.compare import compare_command

    return compare_command(args.stem, study=args.study, preset=args.preset, size=args.size, name=args.name,
                           options=args.options, run=run_options(args), out=args.out, formats=args.format,
                           claims=args.claims, overrides=overrides(args), dry_run=args.dry_run, yes=args.yes,
                           until=until(args))


def cmd_reproduce(args: argparse.Namespace) -> int:
    """`reproduce`: run the studies behind the paper's claims (reusing stored trials) and print the scorecard."""
    from robustbench_vit.commands.reproduce import reproduce_command

    return reproduce_command(preset=args.preset or "default", claims=args.claims, run=run_options(args),
                             yes=args.yes, out=args.out, formats=args.format, overrides=overrides(args),
                             dry_run=args.dry_run, as_json=args.json, until=until(args))


def cmd_calibrate(args: argparse.Namespace) -> int:
    """`calibrate STUDY`: train independent copies of a baseline on the study's settings; A/A rate, noise floor."""
    from robustbench_vit.commands.calibrate import calibrate_command

    return calibrate_command(args.name, model=args.model, replicas=args.replicas, preset=args.preset,
                             run=run_options(args), overrides=overrides(args), as_json=args.json, out=args.out,
                             dry_run=args.dry_run)


def add_reproduce_parsers(sub: argparse._SubParsersAction) -> None:
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
    add_run_options(p)
    add_until_options(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("calibrate", help="A/A check: copies of a baseline on a study's settings (noise floor)")
    p.add_argument("name", help="a study name (studies/NAME.yaml) or a path to a study YAML")
    p.add_argument("--model", default=None, help="the model to copy (default: the study's conv-stem model)")
    p.add_argument("--replicas", type=int, default=3, help="independent copies besides the model (default: 3)")
    p.add_argument("--out", default=None, help="where to write the result (default: reports/STUDY/calibration.json)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_run_options(p)
    p.set_defaults(func=cmd_calibrate)


def add_study_parser(sub: argparse._SubParsersAction) -> None:
    """The `study` command group: run, status, list."""
    p = sub.add_parser("study", help="run studies and watch them (run, status, list)")
    p.set_defaults(func=cmd_study)
    ssub = p.add_subparsers(dest="study_command", required=True)
    r = ssub.add_parser("run", help="run what is left of a study (again: continues where it stopped)")
    r.add_argument("name", help="a study name (studies/NAME.yaml) or a YAML path")
    add_run_options(r)
    add_until_options(r)
    r.add_argument("--detach", action="store_true",
                   help="slurm: submit the jobs and return (run again later to wait, retry and collect)")
    s = ssub.add_parser("status", help="trial counts by model and status, and where the storage is")
    s.add_argument("name", help="a study name or the YAML path it was run from")
    s.add_argument("--json", action="store_true", help="print {model: {status: count}}")
    add_storage_options(s)
    ls = ssub.add_parser("list", help="the studies available by name")
    ls.add_argument("--json", action="store_true")


def cmd_report(args: argparse.Namespace) -> int:
    """`report NAME`: write the study's HTML (and PDF) report and print where."""
    from robustbench_vit.report.build import build_report
    from robustbench_vit.study.files import study_name

    paths = build_report(study_name(args.name), Results.of(args.runs_dir, args.storage), out_dir=args.out,
                         formats=args.format)
    for fmt, path in paths.items():
        print(f"{fmt}: {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """`export NAME --out FILE`: the study's trial table as CSV or Parquet."""
    from robustbench_vit.analysis.frame import export_results
    from robustbench_vit.study.files import study_name

    print(export_results(study_name(args.name), args.out, Results.of(args.runs_dir, args.storage)))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """`leaderboard [STUDY ...]`: rank every stem in the storage; a static site (and CSV / JSON)."""
    from robustbench_vit.commands.leaderboard import leaderboard_command
    from robustbench_vit.study.files import study_name

    return leaderboard_command([study_name(s) for s in args.studies], Results.of(args.runs_dir, args.storage),
                               out=args.out, formats=args.format)


def add_leaderboard_parser(sub: argparse._SubParsersAction) -> None:
    """The `leaderboard` command."""
    p = sub.add_parser("leaderboard", help="rank every stem in the storage: a static site (index.html, a page per "
                       "stem), CSV, JSON")
    p.add_argument("studies", nargs="*", metavar="STUDY", help="studies to rank in (default: every study stored)")
    p.add_argument("--format", default="html", help="comma-separated: html, csv, json (default: html)")
    p.add_argument("--out", default=None, help="output folder (default: reports/leaderboard/)")
    add_storage_options(p)
    p.set_defaults(func=cmd_leaderboard)


def add_analysis_parsers(sub: argparse._SubParsersAction) -> None:
    """The `report`, `export` and `leaderboard` commands."""
    p = sub.add_parser("report", help="write a study's report (HTML, PDF) with metrics, tests and figures")
    p.add_argument("name", help="a study name or the YAML path it was run from")
    p.add_argument("--format", default="html", help="comma-separated: html, pdf (default: html)")
    p.add_argument("--out", default=None, help="output folder (default: reports/NAME/)")
    add_storage_options(p)
    p.set_defaults(func=cmd_report)
    e = sub.add_parser("export", help="write a study's trials as a table (.csv or .parquet)")
    e.add_argument("name", help="a study name or the YAML path it was run from")
    e.add_argument("--out", required=True, help="output file; the extension picks the format (.csv, .parquet)")
    add_storage_options(e)
    e.set_defaults(func=cmd_export)
    add_leaderboard_parser(sub)


def add_model_parsers(sub: argparse._SubParsersAction) -> None:
    """The `models` and `stems` commands."""
    p = sub.add_parser("models", help="list the built-in models with params and GMACs")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("stems", help="list the stems (baselines and the zoo): citation, params, GMACs, matched depth")
    p.add_argument("--size", default="micro", help="model size to measure them at (default: micro)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_stems)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(prog="robustbench-vit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    add_model_parsers(sub)

    p = sub.add_parser("train", help="train one model once (one trial) and print its final error")
    p.add_argument("--model", default="vit_c_micro", help="built-in model name (default: vit_c_micro)")
    p.add_argument("--dataset", default="digits", help="digits, cifar10, cifar100, imagefolder (default: digits)")
    p.add_argument("--data-root", default=None, help="dataset folder (cifar10/100, imagefolder)")
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
    p.set_defaults(func=cmd_train)

    add_study_parser(sub)
    add_analysis_parsers(sub)

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
    add_run_options(p)
    add_until_options(p)
    p.set_defaults(func=cmd_compare)

    add_reproduce_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    args = build_parser().parse_args(argv)
    wait, before = getattr(args, "storage_wait", None), os.environ.get(STORAGE_WAIT_ENV)
    if wait is not None:  # read by every storage this command opens, and inherited by its workers
        os.environ[STORAGE_WAIT_ENV] = str(wait)
    try:
        return int(args.func(args) or 0)
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
