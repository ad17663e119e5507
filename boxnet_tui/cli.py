"""Command line: argument parsing only, one function per subcommand; the work is in the core."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from boxnet_tui import __version__
from boxnet_tui.errors import UserError
from boxnet_tui.heap import keep_freed_memory
from boxnet_tui.names import check_model_name, check_path_name

PROG = "boxnet-tui"
GRAPHICS = ["auto", "halfcell", "sixel", "kitty"]  # see boxnet_tui.tui.graphics
ALL_MICROGRAPHS = (
    "take every micrograph with positives (default: those marked curated, c in the app; all "
    "when none is)"
)
INVERT_EXAMPLES = "negative stain (bright particles): invert the micrographs' contrast"
DISPLAY_THRESHOLD = (
    "score below which picks are no positives (default: the pick set's display threshold, set "
    "with [ ] in the app and kept in boxnet-tui.json; 0 where never set)"
)


def _diameter(text: str) -> float:
    from boxnet_tui.picking import MAX_DIAMETER, MIN_DIAMETER

    value = float(text)
    if not MIN_DIAMETER <= value <= MAX_DIAMETER:
        raise argparse.ArgumentTypeError(
            f"diameter must be {MIN_DIAMETER:g}–{MAX_DIAMETER:g} Å, got {text}"
        )
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text}")
    return value


def _whole_from(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``low``."""

    def whole(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
        return value

    whole.__name__ = "whole number"  # argparse's "invalid whole number value: 'x'"
    return whole


_count, _whole = _whole_from(1), _whole_from(0)


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


DEVICES = "auto, cpu, cuda, cuda:K (GPU K of those visible, from 0) or mps"


def _device(text: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"give {DEVICES}, got {text!r}")
    return text


def _min_mask_distance(text: str) -> float:
    from boxnet_tui.pick_options import min_mask_distance_from_text

    try:
        return min_mask_distance_from_text(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _invert_options(parser: argparse.ArgumentParser, invert: str, no_invert: str) -> None:
    """``--invert`` / ``--no-invert``, one or neither: ``args.invert`` is True, False or None
    (None: as the model was trained, :func:`boxnet_tui.pick_options.resolve_invert`)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--invert", action="store_true", default=None, help=invert)
    group.add_argument("--no-invert", dest="invert", action="store_false", help=no_invert)


def _scale_factor(text: str) -> float | None:
    from boxnet_tui.scale_check import scale_factor_from_text

    try:
        return scale_factor_from_text(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _shard(text: str):
    from boxnet_tui.shards import parse_shard

    try:
        return parse_shard(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_synth(args: argparse.Namespace) -> int:
    from boxnet_tui.synth import make_dataset

    paths = make_dataset(
        args.folder,
        args.count,
        size=args.size,
        pixel_size=args.pixel_size,
        diameter=args.diameter,
        seed=args.seed,
    )
    for path in paths:
        print(path)
    print(f"wrote {len(paths)} micrographs with reference picks (suffix 'truth') to {args.folder}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from boxnet_tui.evaluate import evaluate_folders, format_report, report_json

    for suffix in (args.picks_suffix, args.reference_suffix):
        if suffix:
            check_path_name(suffix, "suffix")
    shape = tuple(args.image_shape) if args.image_shape else None
    report = evaluate_folders(
        args.picks,
        args.reference,
        args.radius,
        picks_suffix=args.picks_suffix,
        reference_suffix=args.reference_suffix,
        border=args.border,
        image_shape=shape,
    )
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(format_report(report))
    for error in report.errors:
        print(f"{PROG}: {error}", file=sys.stderr)
    return 1 if report.errors else 0


def cmd_info(args: argparse.Namespace) -> int:
    from boxnet_tui.folder import describe
    from boxnet_tui.io.layout import find_layout

    entries = describe(args.folder)
    print(find_layout(args.folder).describe())
    failed = 0
    totals: dict[str, list[int]] = {}  # suffix -> [micrographs, picks]
    for entry in entries:
        if entry.error:
            failed += 1
            print(f"{PROG}: {entry.error}", file=sys.stderr)
            continue
        info = entry.info
        assert info is not None
        size = f"{info.pixel_size:.3f} Å/px" if info.pixel_size else "pixel size ?"
        sets = []
        for suffix, star in sorted(entry.pick_files.items()):
            count = _pick_count(star)
            sets.append(f"{suffix} ({'unreadable' if count is None else count})")
            total = totals.setdefault(suffix, [0, 0])
            total[0] += 1
            total[1] += count or 0
        picks = ", ".join(sets) or "no picks"
        print(f"{entry.root}\t{info.shape[1]}x{info.shape[0]}\t{info.dtype}\t{size}\t{picks}")
    print(f"{len(entries) - failed} micrographs readable, {failed} not")
    for suffix, (micrographs, picks) in sorted(totals.items()):
        print(f"pick set {suffix}: {picks} picks on {micrographs} micrographs")
    return 1 if failed else 0


def _pick_count(star: Path) -> int | None:
    """Picks in a STAR file: a fast line count, else a full read; None if unreadable."""
    from boxnet_tui.errors import StarError
    from boxnet_tui.io.star import count_picks, read_picks

    count = count_picks(star)
    if count is not None:
        return count
    try:
        return len(read_picks(star))
    except StarError:
        return None


def _format_seconds(seconds: float) -> str:
    if seconds != seconds:  # NaN: no rate yet
        return "--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes:d}:{secs:02d}"


def _progress_bar(progress) -> None:
    width = 30
    filled = int(width * progress.done / max(1, progress.total))
    bar = "#" * filled + "-" * (width - filled)
    line = (
        f"\r[{bar}] {progress.done}/{progress.total}  {progress.rate:.2f} mic/s  "
        f"ETA {_format_seconds(progress.eta)}"
    )
    if progress.failed:
        line += f"  {progress.failed} failed"
    print(line, end="", file=sys.stderr, flush=True)


def cmd_pick(args: argparse.Namespace) -> int:
    from boxnet_tui.batch_picking import PickSettings, pick_folder

    if args.suffix is not None:
        check_path_name(args.suffix, "suffix")  # refused before any micrograph is picked
    settings = PickSettings(
        diameter=args.diameter,
        threshold=args.threshold,
        pixel_size=args.pixel_size,
        min_mask_distance=args.min_mask_distance,
        invert=args.invert,
        batch_size=args.batch_size,
        scale_factor=args.scale_factor,
    )
    from boxnet_tui.io.layout import convention_note, find_layout, matching_dir

    print(find_layout(args.folder).describe(), flush=True)
    watch_only = [
        flag for flag in ("settle", "poll", "idle_exit") if getattr(args, flag) is not None
    ]
    if watch_only and not args.watch:
        raise UserError(f"--{watch_only[0].replace('_', '-')} goes with --watch")
    if args.watch:
        return _pick_watch(args, settings)
    show = _progress_bar if sys.stderr.isatty() or args.progress else None
    stop = threading.Event()
    with _stop_on_signals(stop) as caught:
        summary = pick_folder(
            args.folder,
            args.model,
            settings,
            suffix=args.suffix,
            device=args.device,
            progress=show,
            should_stop=stop.is_set,
            overwrite_curated=args.overwrite_curated,
            shard=args.shard,
            skip_picked=not args.repick,
            log=True,
            notice=lambda line: print(line, flush=True),
        )
    if show is not None:
        print(file=sys.stderr)
    for error in summary.errors:
        print(f"{PROG}: {error}", file=sys.stderr)
    rate = summary.picked / summary.seconds if summary.seconds else 0.0
    print(
        f"picked {summary.picked} micrographs, {summary.particles} particles "
        f"in {summary.seconds:.1f} s ({rate:.2f} micrographs/s); {len(summary.errors)} failed"
    )
    _pick_counts(args, summary)
    if summary.picked:
        print(f"written to {matching_dir(args.folder)}; {convention_note()}")
    note = summary.curated_note()
    if note:
        print(note.replace("boxnet-tui restore FOLDER", f"{PROG} restore {args.folder}"))
    if summary.stopped:
        print(
            f"stopped before the end: the same command picks the rest "
            f"({PROG} pick-status {args.folder} counts them)"
        )
        return 128 + (caught[0] if caught else signal.SIGINT)
    return 1 if summary.errors else 0


def _pick_counts(args: argparse.Namespace, summary) -> None:
    """The lines on the shard, on what was skipped as already picked, on the log."""
    if summary.log_problem:
        print(
            f"{PROG}: the pick log could not be written ({summary.log_problem}); "
            "pick-status will not count this run's failures",
            file=sys.stderr,
        )
    if args.shard is not None and not args.shard.whole:
        print(f"shard {args.shard}: {summary.micrographs} micrographs of {args.folder}")
    if summary.already_picked:
        print(
            f"{summary.already_picked} micrographs already picked with this model and these "
            "settings were skipped (--repick picks them again)"
        )


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """Ctrl+C and SIGTERM (a scheduler ending the job) set ``stop``: the micrograph being picked
    is finished and written, then the command ends; a second Ctrl+C stops at once. Yields the
    signals caught."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught  # signal handlers belong to the main thread
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        caught.append(signum)
        stop.set()
        print(
            f"\n{PROG}: stopping after the current micrograph (Ctrl+C again stops at once)",
            file=sys.stderr,
            flush=True,
        )

    previous = {
        signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield caught
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _pick_watch(args: argparse.Namespace, settings) -> int:
    from boxnet_tui.watch import DEFAULT_POLL, DEFAULT_SETTLE, watch_folder

    shard = "" if args.shard is None or args.shard.whole else f" (shard {args.shard})"
    print(
        f"watching {args.folder}{shard}: each micrograph is picked once whole; Ctrl+C ends",
        flush=True,
    )

    def picked(progress) -> None:
        if progress.written and progress.current is not None:
            print(f"picked {progress.current.name} ({progress.done} in this run)", flush=True)

    def notice(line: str) -> None:
        print(f"{PROG}: {line}", file=sys.stderr, flush=True)

    stop = threading.Event()
    with _stop_on_signals(stop):
        summary = watch_folder(
            args.folder,
            args.model,
            settings,
            suffix=args.suffix,
            device=args.device,
            shard=args.shard,
            repick=args.repick,
            overwrite_curated=args.overwrite_curated,
            poll=DEFAULT_POLL if args.poll is None else args.poll,
            settle=DEFAULT_SETTLE if args.settle is None else args.settle,
            idle_exit=args.idle_exit,
            should_stop=stop.is_set,
            progress=picked,
            notice=notice,
        )
    print(
        f"watch ended: picked {summary.picked} micrographs, {summary.particles} particles; "
        f"{len(summary.errors)} failed"
    )
    _pick_counts(args, summary)
    note = summary.curated_note()
    if note:
        print(note.replace("boxnet-tui restore FOLDER", f"{PROG} restore {args.folder}"))
    return 1 if summary.errors else 0


def _status_suffix(args: argparse.Namespace) -> str:
    if args.suffix is not None:
        return check_path_name(args.suffix, "suffix")
    if Path(args.model).is_dir():  # a model folder: its name is the suffix
        from boxnet_tui.model.info import find_model

        return find_model(args.model).name
    return check_model_name(args.model)


def cmd_pick_status(args: argparse.Namespace) -> int:
    from boxnet_tui.pick_status import format_status, pick_status

    status = pick_status(args.folder, _status_suffix(args), args.shards)
    print(format_status(status, failures_shown=args.failures))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from boxnet_tui.curation_state import StateStore
    from boxnet_tui.io.backups import backup_root, list_backups, restore_backup

    if args.file is None:
        backups = list_backups(args.folder)
        if not backups:
            print(f"no backups in {args.folder}")
        for backup in backups:
            kind = "  (replaced by a restore)" if backup.before_restore else ""
            print(f"{backup.when}\t{backup.path}\t-> {backup.original.name}{kind}")
        return 0
    backup = restore_backup(args.folder, args.file)
    print(f"restored {backup.original} from {backup.path.name}")
    root = backup_root(args.folder, backup)
    if root is not None and not backup.before_restore:  # a curated file: the mark comes back
        store = StateStore(args.folder)
        store.set_curated(root, True)
        if store.error:
            raise UserError(store.error)
        print(f"{root} marked curated again")
    return 0


def _selection_line(selection) -> str:
    """``taking 2 curated micrographs of 16 (--all-micrographs takes all 16)``."""
    hint = f" (--all-micrographs takes all {selection.matched})" if selection.narrowed else ""
    return f"taking {selection.text}{hint}"


def _picks_line(selection, used: str) -> str:
    """``412 particles at or above the display threshold 0.60; 38 below it not trained``."""
    from boxnet_tui.training.export import count_picks

    shown, hidden = count_picks(selection)
    line = f"{shown} particles at or above the display threshold {selection.threshold:.2f}"
    return line + (f"; {hidden} below it not {used}" if hidden else "")


def cmd_export(args: argparse.Namespace) -> int:
    from boxnet_tui.training.export import export_examples, training_selection

    if args.out.is_dir():  # checked before the work, not found at the final rename
        raise UserError(
            f"{args.out}: is a folder; --out takes the file to write, "
            f"such as {args.out / 'MyModel.tif'}"
        )
    selection = training_selection(
        args.folder,
        args.positives,
        all_micrographs=args.all_micrographs,
        threshold=args.threshold,
    )
    print(f"{_selection_line(selection)}: {_picks_line(selection, 'exported')}", flush=True)
    try:
        count = export_examples(
            args.folder,
            args.positives,
            args.diameter,
            args.out,
            extra_important=args.extra_important,
            uncertain=args.uncertain,
            train_masking=args.train_masking,
            pixel_size=args.pixel_size,
            invert=args.invert,
            micrographs=selection.micrographs,
            thresholds=selection.thresholds,
        )
    except OSError as error:  # a folder that cannot be written, a full disk
        raise UserError(f"{error.filename or args.out}: {error.strerror or error}") from None
    print(f"wrote {count} micrographs of training examples to {args.out}")
    from boxnet_tui.io.layout import mask_path

    masked = sum(mask_path(args.folder, root).is_file() for root in selection.micrographs)
    if masked:
        print(f"junk labels from the masks of {masked} of them (as Warp exports them)")
    return 0


def cmd_export_picks(args: argparse.Namespace) -> int:
    from boxnet_tui.io.layout import convention_note
    from boxnet_tui.io.pick_exchange import export_pick_set

    summary = export_pick_set(
        args.folder,
        args.suffix,
        args.format,
        args.out,
        all_micrographs=args.all,
        box_size=args.box_size,
        micrograph_prefix=args.micrograph_prefix,
        flip_y=args.flip_y,
    )
    line = (
        f"wrote {summary.picks} picks of {summary.micrographs} micrographs ({args.format}) "
        f"to {args.out}"
    )
    if summary.hidden:
        line += f"; {summary.hidden} below the display threshold {summary.threshold:.2f} left out"
    print(line)
    print(convention_note() + (", then y flipped" if args.flip_y else ""))
    return 0


def cmd_import_picks(args: argparse.Namespace) -> int:
    from boxnet_tui.io.pick_exchange import import_pick_files, summary_lines

    summary = import_pick_files(
        args.folder,
        args.files,
        args.suffix,
        args.format,
        replace=args.replace,
        flip_y=args.flip_y,
    )
    for line in summary_lines(summary, args.folder, args.suffix):
        print(line)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from boxnet_tui.training import job, runs
    from boxnet_tui.training.public_set import resolve_public_set

    if args.detach and runs.torchrun_size() > 1:
        raise UserError(
            "--detach starts a process of its own; under torchrun leave it out "
            "(run torchrun inside tmux, or with nohup ... &)"
        )
    state = None
    if args.resume:
        if args.detach:
            run = runs.resume(args.resume, detach=True)
        else:
            run, state = job.resume_here(args.resume)
    else:
        missing = [
            flag
            for flag, value in (("--name", args.name), ("--positives", args.positives))
            if value is None
        ]
        if args.folder is None or missing:
            absent = " ".join(missing) or "FOLDER"
            raise UserError(f"train needs FOLDER, --name and --positives (missing: {absent})")
        check_model_name(args.name)  # before the public set may be made

        def create() -> runs.Run:
            # under torchrun only rank 0 calls this: it may make the public set, and writes
            from boxnet_tui.model.info import find_model
            from boxnet_tui.pick_options import resolve_invert
            from boxnet_tui.training.export import training_selection

            selection = training_selection(
                args.folder,
                args.positives,
                all_micrographs=args.all_micrographs,
                threshold=args.threshold,
            )
            print(f"{_selection_line(selection)}: {_picks_line(selection, 'trained')}", flush=True)
            config = runs.RunConfig(
                name=args.name,
                folder=str(args.folder),
                positives=str(args.positives),
                base=args.base,
                diameter=args.diameter,
                extra_important=None if args.extra_important is None else str(args.extra_important),
                uncertain=None if args.uncertain is None else str(args.uncertain),
                public_set=None,  # made (auto) only once everything else is known to be right
                train_masking=args.train_masking,
                invert=resolve_invert(args.invert, find_model(args.base)),
                pixel_size=args.pixel_size,
                iterations=args.iterations,
                seed=args.seed,
                device=args.device,
                hold_out=not args.no_hold_out,
                micrographs=list(selection.micrographs),
                thresholds=selection.thresholds,
            )
            config = runs.check_new_run(config)  # the name is free, the STAR files readable
            config.public_set = resolve_public_set(args.public_set)
            return runs.create_run(config)

        if args.detach:
            run = create()
            runs.start_detached(run)
        else:
            run, state = job.run_here(create, args.device)
    status = run.status()
    if args.detach:
        print(
            f"{run.name}: training in the background (pid {status.pid}); "
            f"follow it with: boxnet-tui runs tail {run.name}"
        )
        return 0
    if runs.torchrun_rank() == 0:  # one line, not one per process
        print(f"{run.name}: {state}" + (f" ({status.error})" if status.error else ""))
    return 0 if state == "done" else 1


def _run_line(run, status) -> str:
    losses = run.losses()
    last = losses[-1] if losses else {}
    new = f"{last['loss_new']:.4f}" if last.get("loss_new") is not None else "-"
    old = f"{last['loss_old']:.4f}" if last.get("loss_old") is not None else "-"
    return (
        f"{run.name}\t{status.effective_state}\t{status.iteration}/{status.iterations}"
        f"\tloss new {new} old {old}"
    )


def cmd_runs(args: argparse.Namespace) -> int:
    from boxnet_tui.training import runs

    if args.action == "tail":
        return _tail_run(runs.find_run(_need_name(args)), follow=not args.once)
    if args.action == "attach":
        return _attach_run(runs.find_run(_need_name(args)))
    if args.action == "cancel":
        run = runs.find_run(_need_name(args))
        print(runs.cancel_run(run, wait=10.0)[1])
        return 0
    if args.action == "delete":
        print(runs.delete_run(runs.find_run(_need_name(args))))
        return 0
    found = runs.list_runs()
    if not found:
        print("no runs yet")
    for run in found:
        print(_run_line(run, run.status()))
    return 0


def _need_name(args: argparse.Namespace) -> str:
    if not args.name:
        raise UserError(f"runs {args.action} needs the name of a run")
    return args.name


def _attach_run(run) -> int:
    from boxnet_tui.tui.monitor_app import MonitorApp

    model = MonitorApp(run).run()
    if model:
        print(f"{model}: pick with it: {PROG} pick FOLDER --model {model}")
    else:
        print(f"{run.name}: {run.status().effective_state}")
    return 0


def _tail_run(run, follow: bool) -> int:
    import time

    from boxnet_tui.run_monitor import heldout_lines, step_line

    offset = 0
    while True:
        records, offset = run.read_metrics(offset)
        for record in records:
            if isinstance(record.get("heldout"), dict):
                print("\n".join(heldout_lines(record["heldout"])), flush=True)
            else:
                print(step_line(record), flush=True)
        for note in run.skipped_metrics:  # the bad lines of this read, skipped
            print(f"{run.name}: {note}", file=sys.stderr)
        status = run.status()
        if not follow or not status.active:
            print(f"{run.name}: {status.effective_state} at {status.iteration}/{status.iterations}")
            return 0
        time.sleep(1.0)


def cmd_models(args: argparse.Namespace) -> int:
    from boxnet_tui.model.info import list_models
    from boxnet_tui.pick_options import trained_inverted

    for info in list_models():
        origin = "shipped" if info.shipped else str(info.path)
        invert = "yes" if trained_inverted(info) else "no"  # picking with it inverts so
        mask = "mask" if info.has_mask else "-"
        threshold = f"{info.threshold:.2f}" if info.threshold is not None else "0.5"
        ppd = info.scale.pixels_per_diameter
        scale = "8A/px" if ppd is None else f"{ppd:g}px/diameter"
        print(
            f"{info.name}\t{mask}\tthreshold={threshold}\tinput={scale}\tinvert={invert}"
            f"\tparent={info.parent or '-'}"
            f"\t{info.date}\t{origin}"
        )
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    from boxnet_tui.curation import CurationSession
    from boxnet_tui.tui.app import BoxnetApp

    if args.suffix is not None:
        check_path_name(args.suffix, "suffix")
    session = CurationSession(
        args.folder, suffix=args.suffix, diameter=args.diameter, pixel_size=args.pixel_size
    )
    BoxnetApp(session, graphics=args.graphics).run()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from boxnet_tui.curation import CurationSession
    from boxnet_tui.demo import DEMO_DIAMETER, demo_score, ensure_demo

    show = _progress_bar if sys.stderr.isatty() else None
    folder = ensure_demo(args.folder, progress=show, count=args.count, size=args.size)
    if show is not None:
        print(file=sys.stderr)
    print(f"demo folder: {folder}")
    print(demo_score(folder))
    if args.no_app:
        return 0
    from boxnet_tui.tui.app import BoxnetApp

    session = CurationSession(folder, suffix="BoxNetMask", diameter=DEMO_DIAMETER)
    BoxnetApp(session, graphics=args.graphics).run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Pick, curate and retrain BoxNet particle pickers in the terminal.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.epilog = (
        f"Without a COMMAND, {PROG} [FOLDER] opens the curation app on FOLDER (default: here); "
        f"see {PROG} open -h."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    app = commands.add_parser("open", help="open the curation app on a folder (the default)")
    app.add_argument("folder", type=Path, nargs="?", default=Path("."))
    app.add_argument("--suffix", default=None, help="pick set shown (default: the newest)")
    app.add_argument("--diameter", type=_diameter, default=None, help="Å (default: last used, 200)")
    app.add_argument("--pixel-size", type=_positive, default=None, help="Å/px, over headers")
    app.add_argument(
        "--graphics",
        default="auto",
        choices=GRAPHICS,
        help="how the image is drawn (default: the best the terminal supports)",
    )
    app.set_defaults(run=cmd_open)

    demo = commands.add_parser(
        "demo", help="make a demo folder of synthetic micrographs, pick it, open the app on it"
    )
    demo.add_argument("folder", type=Path, nargs="?", help="default: $BOXNET_TUI_HOME/demo")
    demo.add_argument("--no-app", action="store_true", help="make and pick the folder only")
    demo.add_argument("--count", type=_count, default=6, help="micrographs (default 6)")
    demo.add_argument("--size", type=int, default=2048, help="side in pixels (default 2048)")
    demo.add_argument("--graphics", default="auto", choices=GRAPHICS)
    demo.set_defaults(run=cmd_demo)

    synth = commands.add_parser("synth", help="write synthetic micrographs with reference picks")
    synth.add_argument("folder", type=Path)
    synth.add_argument("--count", type=_count, default=4)
    synth.add_argument("--size", type=int, default=2048, help="side in pixels (default 2048)")
    synth.add_argument("--pixel-size", type=_positive, default=1.5, help="Å/px (default 1.5)")
    synth.add_argument("--diameter", type=_diameter, default=180.0, help="Å (default 180)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=cmd_synth)

    evaluate = commands.add_parser(
        "evaluate", help="precision, recall and F1 of picks against reference picks"
    )
    evaluate.add_argument("picks", type=Path, help="folder of per-micrograph STAR files")
    evaluate.add_argument("reference", type=Path, help="folder of reference STAR files")
    evaluate.add_argument("--radius", type=_positive, required=True, help="match radius, pixels")
    evaluate.add_argument("--picks-suffix", default=None, help="only <root>_<suffix>.star")
    evaluate.add_argument("--reference-suffix", default=None)
    evaluate.add_argument(
        "--border", type=float, default=0.0, help="ignore picks this close to the edge (px)"
    )
    evaluate.add_argument(
        "--image-shape",
        type=int,
        nargs=2,
        metavar=("ROWS", "COLS"),
        help="micrograph size, needed with --border",
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(run=cmd_evaluate)

    pick = commands.add_parser("pick", help="pick every micrograph of a folder with a model")
    pick.add_argument("folder", type=Path)
    pick.add_argument("--model", default="BoxNetMask", help="model name or folder")
    pick.add_argument("--diameter", type=_diameter, default=200.0, help="Å (default 200)")
    pick.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="particle probability (default: the model's calibrated one, else 0.5)",
    )
    pick.add_argument("--pixel-size", type=_positive, default=None, help="Å/px, over the header")
    pick.add_argument("--suffix", default=None, help="pick set name (default: the model's)")
    pick.add_argument(
        "--min-mask-distance",
        type=_min_mask_distance,
        default=0.0,
        help="Å kept from junk beyond the particle radius (default 0)",
    )
    _invert_options(
        pick,
        "negative stain (bright particles): invert the contrast (default: as the model was "
        "trained; a model retrained with --invert inverts)",
        "do not invert, even with a model trained on inverted micrographs",
    )
    pick.add_argument(
        "--scale-factor",
        type=_scale_factor,
        default=None,
        metavar="F",
        help="show the network the particles F times the size it learnt them at (0.5-2; 1: "
        "as stated). Default: a generic model tries 0.71-1.41 on the first 4 micrographs and "
        "takes the factor at which the largest share of its peaks clear its threshold; a "
        "retrained model 1",
    )
    pick.add_argument("--device", type=_device, default="auto", help=DEVICES)
    pick.add_argument("--batch-size", type=_count, default=4)
    pick.add_argument("--progress", action="store_true", help="progress bar even when piped")
    pick.add_argument(
        "--overwrite-curated",
        action="store_true",
        help="also re-pick micrographs marked curated that have picks of this suffix (skipped "
        "by default); what is replaced is kept in matching/.backup and mask/.backup, and the "
        "curated mark is cleared",
    )
    pick.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="K/N",
        help="pick only shard K of N (from 0): the micrographs whose name hashes to K, a share "
        "that stays put as files are added; in a SLURM array: "
        "--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT",
    )
    pick.add_argument(
        "--repick",
        action="store_true",
        help="pick again the micrographs already picked with this model and these settings "
        "(recorded in their pick files; skipped by default, so a re-run finishes the rest)",
    )
    pick.add_argument(
        "--watch",
        action="store_true",
        help="keep picking micrographs as they appear, each once whole (size and mtime still "
        "for --settle seconds, all the bytes its header declares); Ctrl+C or SIGTERM ends it "
        "after the current micrograph",
    )
    pick.add_argument(
        "--settle", type=_seconds, default=None, help="--watch: seconds a file must hold still (5)"
    )
    pick.add_argument(
        "--poll", type=_positive, default=None, help="--watch: seconds between looks (2)"
    )
    pick.add_argument(
        "--idle-exit",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="--watch: end after this long with nothing new (default: never)",
    )
    pick.set_defaults(run=cmd_pick)

    pick_status = commands.add_parser(
        "pick-status",
        help="how many micrographs are picked, failed and pending, per shard",
        description="Count, from the files alone, the micrographs of FOLDER picked, failed and "
        "pending in a pick set, per shard of the newest pick run (or --shards N): picked = the "
        "pick file records that run's model and settings; failed = logged in "
        "matching/.picklog/<suffix>/ by a run with them.",
    )
    pick_status.add_argument("folder", type=Path)
    pick_status.add_argument("--model", default="BoxNetMask", help="its name is the pick set")
    pick_status.add_argument("--suffix", default=None, help="the pick set (default: --model's)")
    pick_status.add_argument("--shards", type=_count, default=None, help="N (default: the run's)")
    pick_status.add_argument(
        "--failures", type=int, default=10, help="failed micrographs listed (default 10)"
    )
    pick_status.set_defaults(run=cmd_pick_status)

    restore = commands.add_parser(
        "restore", help="list the backups a pick made of curated files, or restore one"
    )
    restore.add_argument("folder", type=Path)
    restore.add_argument(
        "file",
        nargs="?",
        help="a backup, or the file to restore (e.g. mic1_BoxNet.star, mic1.tif): its newest "
        "backup; without it, list the backups",
    )
    restore.set_defaults(run=cmd_restore)

    export = commands.add_parser(
        "export", help="write curated picks as Warp's training-example TIFF (boxnet2training)"
    )
    export.add_argument("folder", type=Path)
    export.add_argument("--positives", type=Path, required=True, help="one curated STAR")
    export.add_argument("--diameter", type=_diameter, required=True, help="Å")
    export.add_argument("--out", type=Path, required=True, help="FILE.tif")
    export.add_argument("--extra-important", type=Path, default=None, help="STAR (weight 4)")
    export.add_argument("--uncertain", type=Path, default=None, help="STAR (weight 0)")
    export.add_argument(
        "--train-masking",
        action="store_true",
        help="require a junk mask for every micrograph (junk labels come from every mask/*.tif "
        "there is, as Warp exports them)",
    )
    export.add_argument("--pixel-size", type=_positive, default=None, help="Å/px, over headers")
    export.add_argument("--invert", action="store_true", help=INVERT_EXAMPLES)
    export.add_argument("--all-micrographs", action="store_true", help=ALL_MICROGRAPHS)
    export.add_argument("--threshold", type=_fraction, default=None, help=DISPLAY_THRESHOLD)
    export.set_defaults(run=cmd_export)

    export_picks = commands.add_parser(
        "export-picks",
        help="write a pick set for cryoSPARC, RELION, crYOLO, Topaz or EMAN",
        description="Write the pick set SUFFIX (curated micrographs, picks shown at each "
        "display threshold) in another program's format: cryosparc (one STAR for Import "
        "Particle Stack), relion (a folder of coordinate STARs and autopick.star), cbox and box "
        "(a folder, one file a micrograph), topaz (one table). Centres in pixels of the "
        "micrograph as Warp reads it.",
    )
    export_picks.add_argument("folder", type=Path)
    export_picks.add_argument("--suffix", required=True, help="the pick set (e.g. manual)")
    export_picks.add_argument(
        "--format", required=True, choices=["cryosparc", "relion", "cbox", "topaz", "box"]
    )
    export_picks.add_argument(
        "--out", type=Path, required=True, help="a file (cryosparc, topaz) or a folder"
    )
    export_picks.add_argument(
        "--all", action="store_true", help="every micrograph with picks, not only curated ones"
    )
    export_picks.add_argument("--box-size", type=_positive, default=None, help="px (cbox, box)")
    export_picks.add_argument(
        "--micrograph-prefix",
        default="",
        help="put before each micrograph file name in rlnMicrographName (relion, cryosparc), "
        "e.g. MotionCorr/job002/Movies/",
    )
    export_picks.add_argument(
        "--flip-y", action="store_true", help="y = height - 1 - y (a reader of TIFF rows top down)"
    )
    export_picks.set_defaults(run=cmd_export_picks)

    import_picks = commands.add_parser(
        "import-picks",
        help="bring Topaz, crYOLO, EMAN or RELION picks in as a pick set to curate",
        description="Turn Topaz tables, crYOLO CBOX/STAR, EMAN .box, RELION coordinate STARs "
        "(or autopick.star) and particle STARs into matching/<root>_SUFFIX.star of FOLDER, "
        "scores kept. The format is told by content. An existing pick set is never replaced "
        "unless --replace (then backed up first).",
    )
    import_picks.add_argument("folder", type=Path)
    import_picks.add_argument("files", nargs="+", metavar="FILE_OR_DIR", help="pick files")
    import_picks.add_argument("--suffix", required=True, help="the pick set to write")
    import_picks.add_argument(
        "--format", default=None, choices=["topaz", "cbox", "star", "box"], help="force one"
    )
    import_picks.add_argument(
        "--replace",
        action="store_true",
        help="replace existing files of this pick set (each backed up in matching/.backup)",
    )
    import_picks.add_argument(
        "--flip-y", action="store_true", help="y = height - 1 - y (picks of TIFF rows top down)"
    )
    import_picks.set_defaults(run=cmd_import_picks)

    train = commands.add_parser("train", help="retrain a model on curated picks (a run)")
    train.add_argument("folder", type=Path, nargs="?", help="the micrograph folder")
    train.add_argument("--name", help="the new model's name (unique, no special characters)")
    train.add_argument("--positives", type=Path, help="one curated STAR; its suffix is matched")
    train.add_argument("--base", default="BoxNetMask", help="model to start from")
    train.add_argument("--diameter", type=_diameter, default=200.0, help="Å (default 200)")
    train.add_argument("--extra-important", type=Path, default=None, help="STAR (weight 4)")
    train.add_argument("--uncertain", type=Path, default=None, help="STAR (weight 0)")
    train.add_argument(
        "--public-set",
        default="none",
        help="dilute 1:1 with a public example set (twice the iterations): 'auto' (the "
        "package's own, made on first use), a folder of Warp example TIFFs (boxnet2training), "
        "or 'none' (default: as accurate in benchmarks/bench_retrain.py, in half the time)",
    )
    train.add_argument("--train-masking", action="store_true", help="junk from mask/*.tif")
    _invert_options(
        train,
        INVERT_EXAMPLES + "; the new model records it, so picking with it inverts too "
        "(default: as the base model was trained)",
        "do not invert, even from a base trained on inverted micrographs",
    )
    train.add_argument("--pixel-size", type=_positive, default=None, help="Å/px, over headers")
    train.add_argument("--iterations", type=_count, default=None, help="default: Warp's rule")
    train.add_argument(
        "--seed",
        type=_whole,
        default=0,
        help="the random stream of crops and augmentations (default 0; the same seed and "
        "inputs give the same model)",
    )
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    train.add_argument("--no-hold-out", action="store_true", help="train on every micrograph")
    train.add_argument("--all-micrographs", action="store_true", help=ALL_MICROGRAPHS)
    train.add_argument("--threshold", type=_fraction, default=None, help=DISPLAY_THRESHOLD)
    train.add_argument("--resume", metavar="NAME", help="continue a run from its checkpoint")
    train.add_argument("--detach", action="store_true", help="run in the background and return")
    train.set_defaults(run=cmd_train)

    runs = commands.add_parser(
        "runs", help="list training runs; tail, attach (the monitor), cancel or delete one"
    )
    runs.add_argument(
        "action",
        nargs="?",
        choices=["list", "tail", "attach", "cancel", "delete"],
        default="list",
    )
    runs.add_argument("name", nargs="?")
    runs.add_argument("--once", action="store_true", help="tail: print and return")
    runs.set_defaults(run=cmd_runs)

    models = commands.add_parser("models", help="list the models: shipped and your own")
    models.set_defaults(run=cmd_models)

    info = commands.add_parser("info", help="list a folder's micrographs and pick sets")
    info.add_argument("folder", type=Path, nargs="?", default=Path("."))
    info.set_defaults(run=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    keep_freed_memory()  # the network's large tensors reused, not faulted in again each pass
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if not argv or (
        argv[0] not in commands.choices and argv[0] not in ("-h", "--help", "--version")
    ):
        argv = ["open", *argv]  # `boxnet-tui [FOLDER]` opens the app
    args = parser.parse_args(argv)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe fails here, inside the try, not at interpreter exit
        return code
    except UserError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `boxnet-tui info FOLDER | head`: the reader has gone, so stop
        # quietly; point stdout at nothing so the interpreter's final flush cannot fail again
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
