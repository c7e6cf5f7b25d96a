"""``loralab study STUDY.yaml [--workers N] [--executor local|ray] [--ray-address ADDR] [--dry-run]``."""

from __future__ import annotations

import argparse


def study_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="loralab study", description="Run every trial of a study file into <output_dir>/<name>/.")
    parser.add_argument("study", help="study YAML file")
    parser.add_argument("--dry-run", action="store_true", help="list the trials and what would run, run nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="trials at a time: local: N subprocesses, one GPU each where there are GPUs, else cores // N "
                             "threads each (default 1: in this process); ray: at most N in flight (default: as the cluster allows)")
    parser.add_argument("--executor", choices=["local", "ray"], default="local",
                        help="local: on this machine (default); ray: each trial a Ray task (pip install 'loralab[ray]'; "
                             "the study folder must be on storage every node sees)")
    parser.add_argument("--ray-address", metavar="ADDR", help="the Ray cluster to use (default: RAY_ADDRESS, a cluster started "
                                                              "here with `ray start`, else a new local Ray instance)")
    args = parser.parse_args(argv)
    from loralab.studies import load_study, plan, run_study
    from loralab.studies.runner import seconds_per_step
    from loralab.studies.executors import make_executor

    study = load_study(args.study)
    planned = plan(study)
    if args.dry_run:
        print(f"study {study.name}: {len(planned)} trials → {study.folder}")
        keys = study.varied_keys
        for trial, action, steps in planned:
            varied = ", ".join(f"{k}={dict(trial.varied).get(k)}" for k in keys if k in dict(trial.varied))
            print(f"  {trial.name:<32} {action:<16} {f'{steps} steps' if steps else 'by epochs':<10} {varied}")
        todo = [p for p in planned if p[1] != "skip (finished)"]
        steps = sum(p[2] for p in todo)
        unknown = sum(1 for p in todo if not p[2])
        print(f"{len(todo)} to run, {steps} optimiser steps in all"
              + (f" ({unknown} trials by epochs over a data file: not counted)" if unknown else ""))  # fmt: skip
        rate = seconds_per_step(study)
        if rate is None:
            print("estimated time: unknown until a trial has finished (then: its seconds per step, evaluations included)")
        else:
            print(f"estimated time: about {rate * steps / 60:.0f} min at the finished trials' {rate:.1f} s per step "
                  "(training and evaluations; trials that resume need less)")  # fmt: skip
        return
    executor = make_executor(args.executor, args.workers, args.ray_address)  # its mistakes before the study writes anything
    outcome = run_study(study, progress=not args.no_progress, executor=executor)
    counts: dict[str, int] = {}
    for state in outcome.status.values():
        counts[state["status"]] = counts.get(state["status"], 0) + 1
    print(f"loralab study {study.name}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f"; results in {study.folder / 'results.csv'}")  # fmt: skip
    for name, state in outcome.status.items():
        if state["status"] == "failed":
            print(f"  {name}: {state['error']}")
