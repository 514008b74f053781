"""Command line: ``python -m mnistlab run|status|report|data|bench|readme|links`` (the Makefile calls these).

``run``, ``status`` and ``report`` work in the output folder of their ``--dataset``/``--profile``:
the repository's ``reports/`` and ``figures/`` for the committed study (MNIST, ``full``), else
``runs/<dataset>-<profile>/``; ``$MNISTLAB_OUTPUT`` overrides both."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import config


def _names(parser):
    parser.add_argument(
        "--dataset", default="auto", help=f"one of: {', '.join(config.COURSE_DATASETS)} (default: auto)"
    )
    parser.add_argument("--profile", default="quick", help=f"one of: {', '.join(config.PROFILES)} (default: quick)")


def _positive(text: str) -> int:
    """A count of at least 1 (``--jobs 0`` would only fail hours later, inside a chapter)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _common(parser):
    _names(parser)
    parser.add_argument("--seed", type=int, default=config.DEFAULT_SEED)
    parser.add_argument("--jobs", type=_positive, default=2, help="parallel jobs (n_jobs), at least 1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnistlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebooks in order with papermill")
    _common(run)
    run.add_argument("--only", nargs="+", metavar="NN", help="chapters by number (name prefixes), e.g. 01 02")
    run.add_argument("--force", action="store_true", help="re-execute every chapter, up to date or not")
    status = sub.add_parser("status", help="which chapters are up to date and which are stale, and why")
    _common(status)
    report = sub.add_parser(
        "report",
        help="merge the executed notebooks of the run of --dataset/--profile into report.pdf and report.html",
    )
    _names(report)
    report.add_argument("--no-pdf", action="store_true", help="HTML only (no TeX needed)")
    data = sub.add_parser("data", help="fetch and verify a dataset, print its source; or import files")
    _common(data)
    data.add_argument(
        "--import",
        dest="import_dir",
        metavar="DIR",
        help="verify the MNIST / Fashion-MNIST files in DIR and copy them into the cache",
    )
    bench = sub.add_parser("bench", help="time each notebook; write reports/bench.json")
    _common(bench)
    bench.add_argument(
        "--record",
        metavar="DIR",
        help="add the chapters (run.json, executed/) and the time to accuracy (time_to_accuracy.json) run "
        "elsewhere (a GPU machine), recorded in DIR, to reports/bench.json",
    )
    bench.add_argument("--only", nargs="+", metavar="NN", help="with --record: only these chapters (name prefixes)")
    sub.add_parser("readme", help="rewrite the README's results and bench tables from reports/")
    sub.add_parser("links", help="point README badges and notebook clone cells at pyproject's Repository URL")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .data import DataError
    from .report import MissingToolError
    from .runner import NotebookFailed

    try:
        if hasattr(args, "dataset"):
            config.check_name("dataset", args.dataset, config.COURSE_DATASETS)
        if hasattr(args, "profile"):
            config.get_profile(args.profile)
        if args.command == "run":
            from .runner import run_notebooks

            run_notebooks(args.dataset, args.profile, args.seed, args.jobs, only=args.only, force=args.force)
        elif args.command == "status":
            from .runner import status

            print(f"output folder: {config.output_note(args.dataset, args.profile)}")
            states = status(args.dataset, args.profile, args.seed, args.jobs)
            for state in states:
                print(state.line())
            stale = sum(s.stale for s in states)
            print(
                f"{stale} of {len(states)} chapters would be executed by `make notebooks`"
                if stale
                else "every chapter is up to date: `make report` only renders"
            )
        elif args.command == "report":
            from .report import build_report
            from .runner import environment, run_lock

            print(f"report of the run in {config.output_note(args.dataset, args.profile)}", flush=True)
            with environment(MNISTLAB_OUTPUT=config.run_output_dir(args.dataset, args.profile)), run_lock():
                written = build_report(not args.no_pdf, {"dataset": args.dataset, "profile": args.profile})
            for _kind, path in written.items():
                print(f"wrote {config.shown_path(path)}")
        elif args.command == "data" and args.import_dir:
            from .data import import_files

            for line in import_files(args.import_dir):
                print(line)
        elif args.command == "data":
            from .data import load_dataset

            data = load_dataset(args.dataset, args.profile, args.seed)
            print(data.source)
            print(data.summary)
        elif args.command == "readme":
            import json

            from .results import load_metrics, update_readme

            info = json.loads((config.reports_dir() / "run.json").read_text())
            changed = update_readme(config.repo_root() / "README.md", load_metrics(), info, config.bench_record())
            print("README.md results table " + ("updated" if changed else "already up to date"))
        elif args.command == "links":
            from .links import repository_url, sync_links

            changed = sync_links()
            print(f"{len(changed)} file(s) now point at {repository_url()}")
        elif args.command == "bench":
            from .bench import record_chapter_run, record_gpu_bench, run_bench
            from .results import chapter_run_line, goals_line

            if args.record:
                record = Path(args.record)
                if not (record / "run.json").is_file() and not (record / "time_to_accuracy.json").is_file():
                    raise FileNotFoundError(
                        f"{record} holds neither run.json nor time_to_accuracy.json, so it is not the record of a run: "
                        "give the folder scripts/gpu/unpack.sh made (e.g. reports/h200-full)"
                    )
                if (record / "run.json").is_file() and any((record / "executed").glob("*.ipynb")):
                    print(chapter_run_line(record_chapter_run(record, args.only)))
                if (record / "time_to_accuracy.json").is_file():
                    tta = record_gpu_bench(record / "time_to_accuracy.json")["time_to_accuracy"]
                    print(goals_line(tta["goals"], tta["goals_for"]))
                return 0
            run_bench(args.dataset, args.profile, args.seed, args.jobs)
    except (
        config.UnknownNameError,
        config.OutputError,
        DataError,
        MissingToolError,
        NotebookFailed,
        FileNotFoundError,
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, config.UnknownNameError) else 1
    except KeyboardInterrupt:
        print(
            "\nstopped: the chapters that finished are kept and the previous report is left in place; "
            "run the same command again to go on (finished chapters are reused)",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # the reader of our output went away (`| head`): nothing to say to it
        import os

        try:  # as Python's documentation advises: no second error when the interpreter flushes at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except OSError as err:  # anything else the file system refused: one line, no traceback
        # a move or copy names its source, then its target, which is most often the one refused
        target = err.filename2 or err.filename
        where = f" ({target})" if target else ""
        print(
            f"error: {err.strerror or err}{where}: check that path, or choose other folders with "
            f"MNISTLAB_OUTPUT (reports and figures) and MNISTLAB_DATA (the data cache)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
